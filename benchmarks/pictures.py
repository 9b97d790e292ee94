"""Following a chapter's picture as a browser does: the picture slot that comes with the
chapter's choices opens its SSE stream; when the `picture` event for the slot comes, the
<img> it carries is fetched. The picture counts as visible once its bytes are in."""
from __future__ import annotations

import io
import re
import time

import httpx
from httpx_sse import EventSource
from PIL import Image


PICTURE_STREAM = re.compile(r'data-image-chapter="(\d+)"[^>]*?sse-connect="([^"]+)"')
IMG_SRC = re.compile(r'<img src="([^"]+)"')


def picture_stream(html: str) -> str | None:
    found = PICTURE_STREAM.search(html)
    return found.group(2) if found else None


async def follow_picture(client: httpx.AsyncClient, url: str, record) -> None:
    """Read the chapter's picture stream until its scene picture comes (or the stream closes);
    the times go into `record` (a players.ChapterRecord)."""
    slot = f'id="chapter-picture-{record.number}"'
    try:
        async with client.stream("GET", url, headers={"Accept": "text/event-stream"},
                                 timeout=httpx.Timeout(600.0, connect=30.0)) as response:
            async for event in EventSource(response).aiter_sse():
                if event.event == "picture" and slot in event.data and (src := IMG_SRC.search(event.data)):
                    record.picture_event = time.monotonic()
                    picture = await client.get(src.group(1))
                    record.picture_visible = time.monotonic()
                    record.picture_serial = _serial(picture.content)
                    return
                if event.event == "close":
                    return
    except (httpx.HTTPError, OSError) as exc:
        record.picture_error = f"{type(exc).__name__}: {exc}"[:200]


def _serial(png: bytes) -> int | None:
    """The scripted image model's request serial, which its PNGs carry."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            return int(image.text["serial"])
    except Exception:  # not a scripted picture: it cannot be matched to its request
        return None
