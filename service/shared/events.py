"""Chapter event logs shared by every server process through Redis Streams.

The process writing an attempt at a chapter appends each event of its log to the attempt's
stream (XADD, the event's own id as the entry's id, so a reconnect anywhere resumes right
after the id it names) and holds a lease on the attempt while it writes. A reader on any
process follows a mirror of the stream: an EventLog of this process filled from Redis, read
with one XREAD for every stream the process follows. A mirror is a cache: the stream is the
log. When an attempt's lease has lapsed and its stream holds no end, its writer is gone (a
killed process): the mirror asks the game to settle the chapter, and so every stream ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from service.chapters.events import EventLog
from service.domain.chapter_events import ChapterEnd, EventIds, TextPiece, end_from_json, end_to_json
from service.shared.redis import PROCESS_ID, chapter_stream, wake_stream, writer_lease

log = logging.getLogger(__name__)

TEXT, END = b"t", b"e"
# How long one XREAD waits for news before the mirrors' leases are looked at (ms).
BLOCK_MS = 1000
# A failed write to Redis is tried again after this pause (s), in the same order.
RETRY_SECONDS = 0.5

# What settles a chapter whose writer is gone: (adventure, number, its ids) -> its end.
Settle = Callable[[str, int, EventIds], Awaitable[ChapterEnd]]


def _entry_id(event_id: int) -> str:
    return f"{event_id}-0"


class Publisher:
    """Writes what this process's generations publish, in order, a batch per turn of the
    event loop (one pipeline for every stream), and keeps their leases alive."""

    def __init__(self, redis: Redis, keep_seconds: float, lease_seconds: float):
        self.redis = redis
        self.keep_seconds = max(1, int(keep_seconds))
        self.lease_seconds = lease_seconds
        self._pending: list[tuple] = []
        self._flushing: asyncio.Task | None = None
        self._leases: dict[str, str] = {}  # lease key -> stream key, of attempts being written
        self._heartbeat: asyncio.Task | None = None

    async def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._renew(), name="writer leases")

    async def stop(self) -> None:
        """Flushes what is left (the ends of chapters stopped with the server) first."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                while self._pending or (self._flushing and not self._flushing.done()):
                    if self._flushing is None or self._flushing.done():
                        self._schedule()
                    await asyncio.sleep(0.01)
        for lease in list(self._leases):
            self._pending.append(("release", lease))
        if self._pending:
            with contextlib.suppress(RedisError, OSError):
                await self._write(self._pending)

    def publish(self, adventure_id: str, number: int, events: EventLog) -> None:
        """Shares a generation's log from now on (what it holds so far goes first)."""
        last = events.ids.last
        stream, lease = chapter_stream(adventure_id, number, last), writer_lease(adventure_id, number, last)
        self._leases[lease] = stream
        self._pending.append(("lease", lease, stream))
        events.share(lambda event: self._event(stream, lease, events.ids, event))
        self._schedule()

    def _event(self, stream: str, lease: str, ids: EventIds, event: TextPiece | ChapterEnd) -> None:
        if type(event) is TextPiece:
            self._pending.append(("piece", stream, event.id, event.text))
        else:
            self._pending.append(("end", stream, ids.last, end_to_json(event)))
            self._leases.pop(lease, None)
            self._pending.append(("release", lease))
        self._schedule()

    def _schedule(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush(), name="event publisher")

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # what this turn of the loop publishes goes in the same batch
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write(batch)
            except (RedisError, OSError) as exc:
                log.warning("could not publish %d chapter events to Redis (%r); trying again", len(batch), exc)
                self._pending[:0] = batch
                await asyncio.sleep(RETRY_SECONDS)
        self._flushing = None

    async def _write(self, batch: list[tuple]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for item in batch:
            kind = item[0]
            if kind == "piece":
                pipe.xadd(item[1], {TEXT: item[3]}, id=_entry_id(item[2]))
            elif kind == "end":
                pipe.xadd(item[1], {END: item[3]}, id=_entry_id(item[2]))
                pipe.expire(item[1], self.keep_seconds)
            elif kind == "lease":
                pipe.set(item[1], PROCESS_ID, ex=self._lease_ttl())
                pipe.expire(item[2], self.keep_seconds)
            else:
                pipe.delete(item[1])
        for result in await pipe.execute(raise_on_error=False):
            # An entry already there was written by an earlier try of this batch.
            if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
                log.warning("Redis refused a chapter event: %s", result)
            elif isinstance(result, Exception):
                raise result if not isinstance(result, ResponseError) else RedisError(str(result))

    def _lease_ttl(self) -> int:
        return max(1, round(self.lease_seconds))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not self._leases:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for lease, stream in self._leases.items():
                pipe.set(lease, PROCESS_ID, ex=self._lease_ttl())
                pipe.expire(stream, self.keep_seconds)
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("could not renew the writers' leases in Redis: %r", exc)


@dataclass
class _Mirror:
    adventure_id: str
    number: int
    stream: str
    log: EventLog
    position: bytes = b"0-0"
    # When the writer last showed it was alive (an entry, or its lease); opened counts.
    alive_at: float = field(default_factory=time.monotonic)
    settling: bool = False


class Mirrors:
    """Follows the streams of chapters written by other processes, for this process's readers."""

    def __init__(self, redis: Redis, settle: Settle, lease_seconds: float):
        self.redis = redis
        self.settle = settle
        self.lease_seconds = lease_seconds
        self._mirrors: dict[str, _Mirror] = {}
        self._wake_stream = wake_stream(PROCESS_ID)
        self._wake_position = b"0-0"
        self._reader: asyncio.Task | None = None
        self._checked_at = time.monotonic()

    async def start(self) -> None:
        self._wake_position = await self.redis.xadd(self._wake_stream, {b"w": b"1"}, maxlen=10)
        await self.redis.expire(self._wake_stream, 24 * 3600)
        self._reader = asyncio.create_task(self._read(), name="chapter mirrors")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._wake_stream)

    def follow(self, adventure_id: str, number: int, ids: EventIds) -> EventLog:
        """The log of an attempt another process writes (or wrote), as it comes."""
        stream = chapter_stream(adventure_id, number, ids.last)
        mirror = self._mirrors.get(stream)
        if mirror is None:
            mirror = self._mirrors[stream] = _Mirror(adventure_id, number, stream, EventLog(ids, mirror=True))
            asyncio.get_running_loop().create_task(self._wake())
        return mirror.log

    async def _wake(self) -> None:
        """The XREAD under way learns of the new stream now, not when it times out."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.xadd(self._wake_stream, {b"w": b"1"}, maxlen=10)

    async def _read(self) -> None:
        while True:
            streams = {m.stream: m.position for m in self._mirrors.values() if not m.settling}
            streams[self._wake_stream] = self._wake_position
            try:
                replies = await self.redis.xread(streams, block=BLOCK_MS)
            except (RedisError, OSError) as exc:
                log.warning("could not read chapter streams from Redis: %r", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            now = time.monotonic()
            for stream, entries in replies:
                stream = stream.decode()
                if stream == self._wake_stream:
                    self._wake_position = entries[-1][0]
                elif (mirror := self._mirrors.get(stream)) is not None:
                    mirror.alive_at = now
                    self._apply(mirror, entries)
            if now - self._checked_at >= 1.0:
                self._checked_at = now
                await self._check_writers(now)

    def _apply(self, mirror: _Mirror, entries: list) -> None:
        events = mirror.log
        for entry_id, fields in entries:
            mirror.position = entry_id
            if TEXT in fields:
                event_id = int(entry_id.split(b"-", 1)[0])
                expected = events.ids.piece(len(events.texts) + 1)
                if event_id == expected:
                    events.text(fields[TEXT].decode())
                elif event_id > expected:  # cannot happen: a writer's entries are consecutive
                    log.error("chapter stream %s skips from %d to %d", mirror.stream, expected - 1, event_id)
            elif END in fields:
                events.close(end_from_json(fields[END]))
        if events.ended:
            self._mirrors.pop(mirror.stream, None)

    async def _check_writers(self, now: float) -> None:
        """A mirror that heard nothing lately looks for its writer's lease; once the lease has
        been gone for a whole lease period, the writer is gone too."""
        quiet = [m for m in self._mirrors.values() if not m.settling and now - m.alive_at >= 1.0]
        if not quiet:
            return
        pipe = self.redis.pipeline(transaction=False)
        for mirror in quiet:
            pipe.exists(writer_lease(mirror.adventure_id, mirror.number, mirror.log.ids.last))
        try:
            held = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not look at the writers' leases in Redis: %r", exc)
            return
        for mirror, lease in zip(quiet, held, strict=True):
            if lease:
                mirror.alive_at = now
            elif now - mirror.alive_at >= self.lease_seconds:
                mirror.settling = True
                asyncio.get_running_loop().create_task(self._settle(mirror))

    async def _settle(self, mirror: _Mirror) -> None:
        """The rest of the stream first (an end may have come just now), then the store decides."""
        try:
            rest = await self.redis.xrange(mirror.stream, min=b"(" + mirror.position)
            self._apply(mirror, rest)
            if not mirror.log.ended:
                log.info("the writer of %s/%s is gone; settling it", mirror.adventure_id, mirror.number)
                mirror.log.close(await self.settle(mirror.adventure_id, mirror.number, mirror.log.ids))
        except Exception:  # every stream ends: look again at the next check
            log.exception("could not settle chapter %s/%s", mirror.adventure_id, mirror.number)
            mirror.settling = False
            return
        self._mirrors.pop(mirror.stream, None)
