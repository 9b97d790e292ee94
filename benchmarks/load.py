"""One load level: N virtual players as asyncio tasks against a Lanternpath server process,
its memory and CPU sampled throughout, the model's request log collected after.
Everything is bounded: the players by a deadline, the server by its stop timeout."""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from benchmarks.pictures import PictureFollower
from benchmarks.players import ChapterRecord, PlayerPlan, StreamCounter, play, warm_up
from benchmarks.processes import ModelProcess, ProcessSampler, Sample, cpu_parts, cpu_seconds, lanternpath_server
from service.content.loader import load_catalog
from service.domain.lifecycle import JobState
from service.store.db import create_engine, session_factory
from service.store.jobs import JobQueue
from tests.support.server_process import ServerProcess

# The timings the product promises against: a model with a 300 ms first token, 20 ms a
# token, and 2 s helper calls (which the server runs as deferred jobs after each chapter).
TIMINGS = {"ttft": 0.3, "token_interval": 0.02, "helper_latency": 2.0}
# Deferred-job workers (two 2 s helper calls a chapter): enough to keep pace with 50 players'
# chapters; at 200 players some wait, and run once the players stop (DRAIN_LIMIT).
JOB_WORKERS = "64"
# How long the server may take, once the players stop, to run the jobs still queued.
DRAIN_LIMIT = 120.0


@dataclass
class LevelResult:
    players: int
    chapters: int
    records: list[ChapterRecord]
    samples: list[Sample]
    model_log: list[dict]
    client_lag: list[float]
    wall: float
    timed_out: int = 0
    idle_rss: int = 0
    notes: list[str] = field(default_factory=list)
    server: str = "lanternpath"
    # CPU time the server's processes used while the players played and then while it ran
    # the deferred jobs still queued when they stopped (user + system, seconds).
    cpu_seconds: float = 0.0
    # Of that, the part after the players stopped; and how many jobs were pending or
    # running when they did.
    jobs_cpu_seconds: float = 0.0
    jobs_backlog: int = 0
    # cpu_seconds by where it was spent (processes.CPU_PARTS), over the same time.
    cpu_parts: dict[str, float] = field(default_factory=dict)


async def _measure_lag(stop: asyncio.Event, lags: list[float], every: float = 0.02) -> None:
    """How late the client's own loop wakes: the measurement error of every timestamp."""
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(every)
        lags.append(time.monotonic() - before - every)


async def drive(plan: PlayerPlan, players: int, seed: int, limit: float, pid: int,
                others: dict[str, int] | None = None):
    """Run the players to the end or the deadline; return (records, samples, lags, timed out)."""
    streams, records, lags = StreamCounter(), [], []
    follower = await PictureFollower(plan.base_url).start()  # the pictures, followed outside this loop
    sampler = ProcessSampler(pid, lambda: streams.open,
                             {**(others or {}), "players": os.getpid(), "pictures": follower.pid})
    stop = asyncio.Event()
    background = [asyncio.create_task(sampler.run(limit)), asyncio.create_task(_measure_lag(stop, lags))]
    tasks = [asyncio.create_task(play(plan, seed * 1000 + i, streams, records, follower)) for i in range(players)]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await follower.stop()
    for task in done:
        if task.exception() is not None:
            records.append(ChapterRecord(0, time.monotonic(), error=repr(task.exception())[:200]))
    stop.set()
    background[0].cancel()
    await asyncio.gather(*background, return_exceptions=True)
    return records, sampler.samples, lags, len(pending)


def level_limit(chapters: int, players: int) -> float:
    return 60.0 + chapters * (20.0 + players * 0.15)


def scripted_server(model: ModelProcess, workdir: Path, name: str, args: list[str] | None = None,
                    **settings: str) -> ServerProcess:
    """`settings`: more of the server's environment, e.g. JOB_CONCURRENCY="0" (no job workers:
    summaries wait in their table) or LOOP_PREVIEW_WORDS="0"; `args`: of `serve`. No cap on
    chapters written at once: the benchmark measures what each stream costs, not how long a
    queue for one is."""
    return lanternpath_server(workdir, name, {
        "LLM_MODEL": "openai/scripted", "LLM_API_BASE": model.api_base, "LLM_API_KEY": "x",
        "HELPER_MODEL": None, "LLM_FALLBACK_MODELS": None, "JOB_CONCURRENCY": JOB_WORKERS, "LOOP_PREVIEW_WORDS": None,
        "SCREEN_STREAM": None, "MAX_CONCURRENT_CHAPTERS": "0", "IMAGE_MODEL": None, "IMAGE_API_BASE": None,
        "IMAGE_CONCURRENCY": None, "REDIS_URL": None, **settings}, args)


def wait_for_jobs(database_url: str, limit: float = DRAIN_LIMIT) -> tuple[int, int]:
    """(jobs pending or running now, jobs still so when the queue emptied or `limit` passed)."""
    return asyncio.run(_wait_for_jobs(database_url, limit))


async def _wait_for_jobs(database_url: str, limit: float) -> tuple[int, int]:
    engine = create_engine(database_url)
    queue = JobQueue(session_factory(engine))

    async def open_jobs() -> int:
        return len(await queue.listing((JobState.PENDING, JobState.RUNNING)))

    try:
        backlog = left = await open_jobs()
        deadline = time.monotonic() + limit
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            left = await open_jobs()
        return backlog, left
    finally:
        await engine.dispose()


def run_level(model: ModelProcess, server: ServerProcess, players: int, chapters: int,
              seed: int = 7, label: str = "lanternpath", jobs: bool = True,
              think: tuple[float, float] | None = None, **knobs) -> LevelResult:
    """Play one level against a running server (the caller starts and stops it), then wait
    for its deferred jobs (`jobs`: the server has a job queue) so that their CPU counts;
    `knobs`: more of the scripted model's script, e.g. image_latency=3.0; `label` names the
    server; `think`: the players' think time, in seconds (PlayerPlan's by default)."""
    # Tagged replies let each chapter be matched to its own model request, whose measured
    # timing (not the nominal TIMINGS) is what the server's added time is taken against.
    model.configure(**TIMINGS, tag_replies=True, **knobs)
    idle_rss = psutil.Process(server.process.pid).memory_info().rss
    catalog = load_catalog()
    warm_up()
    plan = PlayerPlan(server.base_url, chapters, sorted(catalog.worlds), sorted(catalog.topics),
                      start_spread=min(2.0, 0.5 + players / 100))
    if think is not None:
        plan.think = think
    started, cpu_before = time.monotonic(), cpu_seconds(server.process.pid)
    parts_before = cpu_parts(server.process.pid)
    limit = level_limit(chapters, players)
    records, samples, lags, timed_out = asyncio.run(
        drive(plan, players, seed, limit, server.process.pid, {"model": model.process.pid}))
    wall = time.monotonic() - started
    # Every chapter's deferred jobs count, those still queued when the players stop too: a
    # server keeps running them after its players have gone.
    played = cpu_seconds(server.process.pid)
    jobs = jobs and server.env.get("JOB_CONCURRENCY") != "0"  # no workers: the jobs wait in their table
    backlog, left = wait_for_jobs(server.env["DATABASE_URL"]) if jobs else (0, 0)
    cpu, parts = cpu_seconds(server.process.pid), cpu_parts(server.process.pid)
    result = LevelResult(players, chapters, records, samples, model.requests(), lags, wall, timed_out, idle_rss,
                         server=label, cpu_seconds=cpu - cpu_before, jobs_cpu_seconds=cpu - played,
                         jobs_backlog=backlog, cpu_parts={part: parts[part] - parts_before[part] for part in parts})
    if timed_out:
        result.notes.append(f"{timed_out} players did not finish within {limit:.0f} s")
    if left:
        result.notes.append(f"{left} of {backlog} deferred jobs still pending or running {DRAIN_LIMIT:.0f} s "
                            "after the players stopped; their CPU does not count")
    return result
