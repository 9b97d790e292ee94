"""The SSE endpoint of a chapter. A running chapter is followed live from its event log;
a finished one is replayed from the store; a reconnect with Last-Event-ID resumes right
after that event, so no text arrives twice and none is missing.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from service.chapters.events import StreamEvent
from service.chapters.game import GameError
from service.store.models import Adventure, Chapter
from service.web import pages

# Browsers drop an SSE event whose data is empty, so `close` carries a word.
CLOSE_DATA = "done"
MAX_EVENT_ID = 10**9
# Shorter than the server's graceful-shutdown timeout (5 s), so the last events go out.
SHUTDOWN_GRACE_SECONDS = 3.0


def last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > MAX_EVENT_ID:
        raise GameError(400, "The Last-Event-ID header must be the number of an event of this stream.")
    return int(raw)


async def chapter_stream(request: Request, services, adventure: Adventure, chapter: Chapter) -> Response:
    after = last_event_id(request)
    generation = services.game.follow(adventure, chapter)
    if generation is not None:
        events = generation.log.follow(after)
    else:
        events = _after(await _stored_events(services, adventure, chapter), after)
    shutdown = anyio.Event()
    return EventSourceResponse(
        _frames(events, shutdown, services.writer), ping=15, headers={"Cache-Control": "no-store"},
        shutdown_event=shutdown, shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )


async def _stored_events(services, adventure: Adventure, chapter: Chapter) -> list[StreamEvent]:
    """The final events of a chapter no generation holds: finished, failed or interrupted."""
    n = chapter.chunk_count
    renderer = services.pages
    if chapter.state == "complete":
        paragraphs = [p for p in chapter.text.split("\n\n") if p]
        legend = pages.legend_for(services, adventure, chapter)
        return [
            StreamEvent(n + 1, "replace-content", await renderer.chapter(paragraphs)),
            StreamEvent(n + 2, "choices",
                        await renderer.choices(adventure.id, chapter.number, chapter.choices, legend)),
            StreamEvent(n + 3, "close", CLOSE_DATA),
        ]
    message = pages.unfinished_message(chapter)
    return [
        StreamEvent(n + 1, "chapter-error", await renderer.error(adventure.id, chapter.number, message)),
        StreamEvent(n + 2, "close", CLOSE_DATA),
    ]


async def _after(events: Iterable[StreamEvent], after: int) -> AsyncIterator[StreamEvent]:
    for event in events:
        if event.id > after:
            yield event


async def _frames(events: AsyncIterator[StreamEvent], shutdown: anyio.Event,
                  writer) -> AsyncIterator[ServerSentEvent]:
    watcher = asyncio.create_task(_stop_writing_on(shutdown, writer))
    try:
        async for event in events:
            yield ServerSentEvent(data=event.data or CLOSE_DATA, event=event.event, id=str(event.id))
    finally:
        watcher.cancel()


async def _stop_writing_on(shutdown: anyio.Event, writer) -> None:
    """When the server is stopping, chapters still being written end with chapter-error now,
    so that every open stream gets its last events before the connection goes."""
    await shutdown.wait()
    writer.stop_all()
