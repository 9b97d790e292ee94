"""The worker pool inside the server process. Streams come first: jobs for a chapter wait
until its stream has closed (unless their kind reads none of its text), and with the
embedded local model (which shares the CPU) no model-calling job runs while any chapter
streams: a job under way is set back. Workers come in lanes, each taking its own kinds of
job, so that slow pictures never hold up the summaries the next chapters are written from.
Each lane has one claimer, which claims a job whenever one of its workers is free: news of a
job wakes one query per lane, never one per worker (sixteen picture workers all asking the
queue at once stalled a player's choice by 60-100 ms).
The jobs a runner holds are renewed in the queue while they run: a job whose process died is
taken by another process once its lease lapses.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from service.config import Settings
from service.jobs.work import JobHandler
from service.store.jobs import JobQueue, backoff
from service.store.models import Job, as_utc, utcnow

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0


class ChapterStreams(Protocol):
    """The chapters being written, as the runner sees them (the chapter writer): it tells
    the runner when one starts (`stream_started`) and ends (`stream_ended`)."""

    idle: asyncio.Event

    def streaming_chapters(self) -> set[tuple[str, int]]: ...
    def watch(self, watcher) -> None: ...


@dataclass(frozen=True)
class Lane:
    """`workers` workers that take only jobs of these kinds; they pass over the jobs
    `elsewhere` names, as (kind, adventure, chapter): those being done outside the workers."""

    kinds: frozenset[str]
    workers: int
    elsewhere: Callable[[], Collection[tuple[str, str, int]]] = frozenset


class JobRunner:
    def __init__(self, queue: JobQueue, handlers: Mapping[str, JobHandler], streams: ChapterStreams,
                 settings: Settings, lanes: list[Lane] | None = None, while_streaming: Collection[str] = ()):
        self.queue = queue
        self.handlers = handlers
        self.streams = streams
        self._streams_first = settings.uses_local_model
        self.lanes = lanes if lanes is not None else [Lane(frozenset(handlers), settings.job_workers)]
        # Kinds that read no chapter text: they may run while their chapter streams.
        self.while_streaming = frozenset(while_streaming)
        # Called with each job whose attempt has ended (done, failed, or to be retried).
        self.on_finished: list[Callable[[Job], None]] = []
        self.timeout = settings.job_timeout
        self.attempts = settings.job_attempts
        self.backoff_seconds = settings.job_backoff_seconds
        self._wakes = [asyncio.Event() for _ in self.lanes]
        self._changed = asyncio.Event()
        self._workers: list[asyncio.Task] = []
        self._jobs: set[asyncio.Task] = set()
        self._running: dict[int, asyncio.Task] = {}
        self._lease_seconds = settings.job_lease_seconds
        streams.watch(self)

    async def start(self, recover: bool = True) -> None:
        """`recover`: the only process, so jobs left running were a stopped process's."""
        recovered = await self.queue.recover() if recover else 0
        if recovered:
            log.info("picked up %d jobs left running by a stopped process", recovered)
        self._workers = [asyncio.create_task(self._claim(lane, wake), name=f"job lane {n}")
                         for n, (lane, wake) in enumerate(zip(self.lanes, self._wakes, strict=True))
                         if lane.workers > 0]
        if self._workers:
            self._workers.append(asyncio.create_task(self._renew(), name="job leases"))

    async def stop(self) -> None:
        tasks = [*self._workers, *self._jobs]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        for wake in self._wakes:
            wake.set()

    def stream_ended(self, chapter: tuple[str, int]) -> None:
        """A chapter closed: its jobs are due, except where they are done elsewhere (a lane
        woken for nothing still costs two queries)."""
        for lane, wake in zip(self.lanes, self._wakes, strict=True):
            if not _done_elsewhere(lane, chapter, lane.kinds - self.while_streaming):
                wake.set()

    def stream_started(self, chapter: tuple[str, int]) -> None:
        """A chapter began streaming: with the local model, running jobs give way; jobs that
        may run beside it (a new adventure's choice pictures, enqueued with the adventure:
        so only with a first chapter) are looked for at once."""
        if self._streams_first:
            for task in self._running.values():
                task.cancel("set back for a streaming chapter")
        if chapter[1] == 1:
            for lane, wake in zip(self.lanes, self._wakes, strict=True):
                if (kinds := lane.kinds & self.while_streaming) and not _done_elsewhere(lane, chapter, kinds):
                    wake.set()

    async def changed(self, timeout: float) -> None:
        """Wait until some job finishes (or the timeout passes)."""
        await _until(self._changed, timeout)

    def job_changed(self, *_about: object) -> None:
        """A job finished (here, or in another process: see shared/news.py)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await self.queue.renew(list(self._running))
            except Exception:  # the next renewal tries again; a lapsed lease costs a second run
                log.exception("could not renew the leases of running jobs")

    async def _claim(self, lane: Lane, wake: asyncio.Event) -> None:
        """The lane's claimer: while one of its workers is free, the next job it may take."""
        free = asyncio.Semaphore(lane.workers)
        while True:
            await free.acquire()
            if self._streams_first:
                await self.streams.idle.wait()
            wake.clear()  # news from here on wakes the sleep below
            looked = utcnow()
            try:
                job = await self.queue.claim(self.streams.streaming_chapters(), lane.kinds, self.while_streaming,
                                             lane.elsewhere())
            except BaseException:
                free.release()
                raise
            if job is None:
                free.release()
                await self._sleep(lane, wake, looked)
                continue
            task = asyncio.create_task(self._run(job), name=f"job {job.id} {job.kind}")
            self._jobs.add(task)
            task.add_done_callback(lambda done: self._ended(done, free))

    def _ended(self, task: asyncio.Task, free: asyncio.Semaphore) -> None:
        self._jobs.discard(task)
        free.release()
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The queue could not be told (its database failed): the job's lease lapses and
            # it runs again, here or elsewhere.
            log.error("job task %s ended with %r", task.get_name(), exc)

    async def _sleep(self, lane: Lane, wake: asyncio.Event, looked: datetime) -> None:
        """Until news, or the next job that falls due after the claim `looked` (a job due
        already was passed over: its chapter streams, or it is done elsewhere; news of
        either's end wakes the lane)."""
        due = await self.queue.next_due(lane.kinds, after=looked)
        wait = POLL_SECONDS
        if due is not None:
            wait = min(POLL_SECONDS, max(0.05, (as_utc(due) - utcnow()).total_seconds()))
        await _until(wake, wait)

    async def _run(self, job: Job) -> None:
        started = time.monotonic()
        log.info("job %s %s %s/%s started (attempt %d)", job.id, job.kind, job.adventure_id,
                 job.chapter_number, job.attempts)
        task = asyncio.create_task(asyncio.wait_for(self.handlers[job.kind](job), self.timeout))
        self._running[job.id] = task
        try:
            await task
        except asyncio.CancelledError:
            if task.cancelled() and not asyncio.current_task().cancelling():
                await self._give_way(job)
                return
            raise
        except Exception as exc:
            await self._failed(job, exc, time.monotonic() - started)
        else:
            if await self.queue.done(job.id, task.result()):
                log.info("job %s %s done in %.2f s", job.id, job.kind, time.monotonic() - started)
            else:
                log.warning("job %s %s was taken over by another process; its result stands", job.id, job.kind)
        finally:
            self._running.pop(job.id, None)
            self.job_changed()
        for callback in self.on_finished:
            callback(job)

    async def _give_way(self, job: Job) -> None:
        log.info("job %s %s set back: a chapter is streaming", job.id, job.kind)
        await self.queue.set_back(job.id)

    async def _failed(self, job: Job, exc: Exception, seconds: float) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("job %s %s failed after %.2f s (attempt %d): %s", job.id, job.kind, seconds, job.attempts, error)
        if job.attempts < self.attempts:
            await self.queue.retry_later(job.id, error, utcnow() + backoff(job.attempts, self.backoff_seconds))
        else:
            await self.queue.failed(job.id, error)


def _done_elsewhere(lane: Lane, chapter: tuple[str, int], kinds: Collection[str]) -> bool:
    """Whether the chapter's jobs of these kinds are being done outside the lane's workers (a
    lane woken for nothing still costs two queries)."""
    return any(kind in kinds and (adventure_id, number) == chapter for kind, adventure_id, number in lane.elsewhere())


async def _until(event: asyncio.Event, timeout: float) -> None:
    """Wait until `event` is set, or `timeout` seconds. Not wait_for: on Python 3.11 it drops a
    cancellation that comes as the event is set (a chapter ending as the server stops), and
    the worker it should have stopped sleeps on, holding up the server's shutdown."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
