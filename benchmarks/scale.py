"""`python -m benchmarks --scale`: Lanternpath on PostgreSQL and Redis, as it runs on several
hosts, with one and with two worker processes (`serve --workers N`), at 200 and 400 players:
CPU per token (all of the server's processes), added first text, worst gap, errors.

Needs a PostgreSQL user that may create databases and a Redis: --postgres and --redis, or
TEST_POSTGRES_URL and TEST_REDIS_URL (as the tests). Each run gets a database of its own.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from benchmarks.load import LevelResult, run_level, scripted_server
from benchmarks.processes import ModelProcess, machine_load, stop_server
from benchmarks.stats import Row, error_kinds, summarize
from tests.support.database import postgres_admin

SCALE_LEVELS = (200, 400)
SCALE_WORKERS = (1, 2)


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"lanternpath_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(postgres_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(postgres_admin(admin_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


def compare_scale(args, workdir: Path, version: str) -> str:
    postgres = args.postgres or os.environ.get("TEST_POSTGRES_URL")
    redis = args.redis or os.environ.get("TEST_REDIS_URL")
    if not postgres or not redis:
        raise SystemExit("--scale needs --postgres URL (a user that may create databases) and --redis URL, "
                         "or TEST_POSTGRES_URL and TEST_REDIS_URL")
    levels = tuple(p for p in args.levels if p > 1) if args.players_given else SCALE_LEVELS
    lines = ["## Several processes: PostgreSQL and Redis", "",
             "| players | workers | chapters | errors | CPU per token (µs) | added first text p50 / p99 (ms) "
             "| worst added gap p50 / p99 (ms) | server CPU (cores) |",
             "|---:|---:|---:|---:|---:|---|---|---:|"]
    notes: list[str] = []
    model = ModelProcess(workdir / "scripted-model.log").start()
    try:
        for players in levels:
            for workers in SCALE_WORKERS:
                row, level = _run(model, workdir, postgres, redis, players, workers, args)
                what = f"{players} players, {workers} workers"
                notes += [f"- {what}: {note}" for note in level.notes]
                if kinds := error_kinds(level):
                    notes.append(f"- {what}, errors: {kinds}")
                first = " / ".join(_ms(row.p("added_first", q)) for q in (50, 99))
                gap = " / ".join(_ms(row.p("added_gap", q)) for q in (50, 99))
                per_token = "–" if row.cpu_per_token_us is None else f"{row.cpu_per_token_us:.0f}"
                lines.append(f"| {players} | {workers} | {row.chapters_ok} | {row.errors + row.unmatched} "
                             f"| {per_token} | {first} | {gap} | {row.server_cpu / 100:.2f} |")
                print(lines[-1], flush=True)
    finally:
        model.stop()
    return "\n".join(lines + ["", f"{args.chapters} htmx chapters per player; {machine_load()}; {version}.", "",
                              *notes])


def _run(model: ModelProcess, workdir: Path, postgres: str, redis: str, players: int, workers: int,
         args) -> tuple[Row, LevelResult]:
    with fresh_database(postgres) as database:
        server = scripted_server(model, workdir, f"scale-{players}-{workers}", args=["--workers", str(workers)],
                                 DATABASE_URL=database, REDIS_URL=redis)
        try:
            level = run_level(model, server, players, args.chapters, args.seed, label=f"{workers} workers")
            return summarize(level), level
        finally:
            stop_server(server)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1e3:.1f}"
