"""Wake-ups between server processes, over Redis pub/sub: a picture drawn or a job finished
in one process wakes the streams that wait for it in every other (the picture and summary
streams also look again every few seconds, so a lost message costs a wait, never a result).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.shared.redis import NEWS_CHANNEL, PROCESS_ID

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


class News:
    def __init__(self, redis: Redis):
        self.redis = redis
        self._handlers: dict[str, Callable[..., None]] = {}
        self._listener: asyncio.Task | None = None
        self._sending: set[asyncio.Task] = set()

    def on(self, kind: str, handler: Callable[..., None]) -> None:
        """`handler(*args)` runs for each `kind` of news another process sends."""
        self._handlers[kind] = handler

    def send(self, kind: str, *args: str | int) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(json.dumps([PROCESS_ID, kind, args])))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, message: str) -> None:
        try:
            await self.redis.publish(NEWS_CHANNEL, message)
        except (RedisError, OSError) as exc:
            log.warning("could not send news to the other processes: %r", exc)

    async def start(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(NEWS_CHANNEL)  # before start-up ends: no news is missed after it
        self._listener = asyncio.create_task(self._listen(pubsub), name="news from other processes")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _listen(self, pubsub) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(timeout=None)
                except (RedisError, OSError) as exc:
                    log.warning("lost the news channel (%r); listening again", exc)
                    await asyncio.sleep(RETRY_SECONDS)
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.subscribe(NEWS_CHANNEL)
                    continue
                if message is not None:
                    self._deliver(message["data"])
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _deliver(self, data: bytes) -> None:
        try:
            sender, kind, args = json.loads(data)
        except (ValueError, TypeError):
            return
        handler = self._handlers.get(kind)
        if sender != PROCESS_ID and handler is not None:
            handler(*args)
