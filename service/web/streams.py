"""The SSE endpoint of a chapter: the chapter's events (chapter_events.py), live from its
generation or from its stored end. A reconnect with Last-Event-ID resumes right after that
event; an id that names no event of this stream (junk, another attempt's, a process's that
is gone) starts it over. Either way the stream ends with `close`.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from service.chapters.events import EventLog
from service.chapters.writer import ChapterWriter
from service.store.models import Adventure
from service.web.chapter_events import ChapterRendering

# Event ids are decimal numbers; anything else (a sign, "²", letters) is no id of ours.
_EVENT_ID = re.compile(r"[0-9]{1,18}")
# Shorter than the server's graceful-shutdown timeout (5 s), so the last events go out.
SHUTDOWN_GRACE_SECONDS = 3.0


def last_event_id(request: Request) -> int | None:
    """The id a reconnecting browser last saw; None when it sent none, or nothing like one."""
    raw = request.headers.get("last-event-id", "").strip()
    return int(raw) if _EVENT_ID.fullmatch(raw) else None


def chapter_stream(request: Request, services, adventure: Adventure, number: int, log: EventLog) -> Response:
    rendering = ChapterRendering(services.pages, adventure.id, number)
    shutdown = anyio.Event()
    return EventSourceResponse(
        _frames(log, last_event_id(request), rendering, shutdown, services.writer), ping=15,
        headers={"Cache-Control": "no-store"}, shutdown_event=shutdown, shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )


async def _frames(log: EventLog, after: int | None, rendering: ChapterRendering, shutdown: anyio.Event,
                  writer: ChapterWriter) -> AsyncIterator[ServerSentEvent]:
    watcher = asyncio.create_task(_stop_writing_on(shutdown, writer))
    try:
        async for item in log.follow(after):
            event = await rendering.render(item)
            # A plain string: sse-starlette splits a Markup's lines far slower (per token).
            yield ServerSentEvent(data=str(event.html), event=event.name, id=str(event.id))
    finally:
        watcher.cancel()


async def _stop_writing_on(shutdown: anyio.Event, writer: ChapterWriter) -> None:
    """When the server is stopping, chapters still being written end with chapter-error now,
    so that every open stream gets its last events before the connection goes."""
    await shutdown.wait()
    writer.stop_all()
