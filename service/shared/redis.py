"""The Redis client every shared piece uses, and the names of its keys, in one place."""
from __future__ import annotations

import uuid

from redis.asyncio import Redis

PREFIX = "lanternpath"
# Names this process by in Redis (its wake-up stream, the senders of its news) and in the
# job table (the jobs it has claimed).
PROCESS_ID = uuid.uuid4().hex


def connect(url: str) -> Redis:
    """Bytes in, bytes out: a chapter's text is decoded once, where it is read."""
    return Redis.from_url(url, decode_responses=False, health_check_interval=30)


def chapter_stream(adventure_id: str, number: int, last_event_id: int) -> str:
    """The stream of one attempt at a chapter (an attempt is known by its last event id)."""
    return f"{PREFIX}:events:{adventure_id}:{number}:{last_event_id}"


def writer_lease(adventure_id: str, number: int, last_event_id: int) -> str:
    """Held by the process writing that attempt, for as long as it writes it."""
    return f"{PREFIX}:writing:{adventure_id}:{number}:{last_event_id}"


def start_bucket(address: str) -> str:
    return f"{PREFIX}:starts:{address}"


NEWS_CHANNEL = f"{PREFIX}:news"


def wake_stream(process_id: str) -> str:
    return f"{PREFIX}:wake:{process_id}"
