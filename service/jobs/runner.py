"""The worker pool inside the server process. Streams come first: jobs for a chapter wait
until its stream has closed (unless their kind reads none of its text), and with the
embedded local model (which shares the CPU) no model-calling job runs while any chapter
streams: a job under way is set back. Workers come in lanes, each taking its own kinds of
job, so that slow pictures never hold up the summaries the next chapters are written from.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from service.store.jobs import JobQueue, backoff
from service.store.models import Job, as_utc, utcnow

log = logging.getLogger(__name__)
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Lane:
    """`workers` workers that take only jobs of these kinds."""

    kinds: frozenset[str]
    workers: int


class JobRunner:
    def __init__(self, services, handlers: dict, lanes: list[Lane] | None = None,
                 while_streaming: Collection[str] = ()):
        settings = services.settings
        self.services = services
        self.queue: JobQueue = services.jobs
        self.handlers = handlers
        self.lanes = lanes if lanes is not None else [Lane(frozenset(handlers), settings.job_concurrency)]
        # Kinds that read no chapter text: they may run while their chapter streams.
        self.while_streaming = frozenset(while_streaming)
        # Called with each job whose attempt has ended (done, failed, or to be retried).
        self.on_finished: list[Callable[[Job], None]] = []
        self.timeout = settings.job_timeout
        self.attempts = settings.job_attempts
        self.backoff_seconds = settings.job_backoff_seconds
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._workers: list[asyncio.Task] = []
        self._running: dict[int, asyncio.Task] = {}

    @property
    def _streams_first(self) -> bool:
        return self.services.settings.uses_local_model

    async def start(self) -> None:
        recovered = await self.queue.recover()
        if recovered:
            log.info("picked up %d jobs left running by a stopped process", recovered)
        self._workers = [asyncio.create_task(self._work(lane), name=f"job worker {n}.{i}")
                         for n, lane in enumerate(self.lanes) for i in range(lane.workers)]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def wake(self, *_args) -> None:
        self._wake.set()

    def stream_started(self, *_args) -> None:
        """A chapter began streaming: with the local model, running jobs give way."""
        if self._streams_first:
            for task in self._running.values():
                task.cancel("set back for a streaming chapter")

    async def changed(self, timeout: float) -> None:
        """Wait until some job finishes (or the timeout passes)."""
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def _work(self, lane: Lane) -> None:
        while True:
            if self._streams_first:
                await self.services.writer.idle.wait()
            job = await self.queue.claim(self.services.writer.streaming_chapters(), lane.kinds, self.while_streaming)
            if job is None:
                await self._sleep(lane)
                continue
            await self._run(job)

    async def _sleep(self, lane: Lane) -> None:
        self._wake.clear()
        due = await self.queue.next_due(lane.kinds)
        wait = POLL_SECONDS
        if due is not None:
            wait = min(POLL_SECONDS, max(0.05, (as_utc(due) - utcnow()).total_seconds()))
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
        except TimeoutError:
            pass

    async def _run(self, job: Job) -> None:
        started = time.monotonic()
        log.info("job %s %s %s/%s started (attempt %d)", job.id, job.kind, job.adventure_id,
                 job.chapter_number, job.attempts)
        task = asyncio.create_task(asyncio.wait_for(self.handlers[job.kind](self.services, job), self.timeout))
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
            await self.queue.done(job.id, task.result())
            log.info("job %s %s done in %.2f s", job.id, job.kind, time.monotonic() - started)
        finally:
            self._running.pop(job.id, None)
            self._changed.set()
            self._changed = asyncio.Event()
        for callback in self.on_finished:
            callback(job)

    async def _give_way(self, job: Job) -> None:
        log.info("job %s %s set back: a chapter is streaming", job.id, job.kind)
        await self.queue.set_back(job.id)

    async def _failed(self, job: Job, exc: Exception, seconds: float) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        retry_at: datetime | None = None
        if job.attempts < self.attempts:
            retry_at = utcnow() + backoff(job.attempts, self.backoff_seconds)
        log.warning("job %s %s failed after %.2f s (attempt %d): %s", job.id, job.kind, seconds, job.attempts, error)
        await self.queue.failed(job.id, error, retry_at)
