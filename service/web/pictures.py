"""What the pages show of the pictures: a chapter's slot (and, in the first chapter, the one
beside each choice), the stream that fills a page's waiting slots as pictures are drawn
(the summary page's pattern: its own small SSE endpoint), and the pictures themselves.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from service.domain.lifecycle import ChapterState
from service.domain.pictures import SlotState
from service.store.models import Adventure, Picture
from service.store.pictures import SCENE, ChapterPictures, Shown

# How long a page's picture stream waits for pictures still being drawn before it closes.
STREAM_SECONDS = 300.0
# Without news, a stream looks again this often. News comes with every picture job's end,
# also from other processes (over Redis): this is the fallback, and each look is three
# queries (at 50 players, looking every 5 s took 40 % of a core).
RECHECK_SECONDS = 15.0
# The choices reach the page in another response than the pictures do: a choice's picture
# waits this long after its chapter is finished, so that its slot is there to take it.
CHOICES_ARRIVE_SECONDS = 0.5
# A picture's address is its content: a browser may keep it as long as it likes.
CACHE_FOREVER = "private, max-age=31536000, immutable"


class Served(Protocol):
    """A picture as served: a stored one, or one drawn here lately (jobs/pictures.py RecentPictures)."""

    digest: str
    data: bytes
    content_type: str


def picture_url(picture: Picture | Shown) -> str:
    return f"/adventures/{picture.adventure_id}/pictures/{picture.digest}"


def stream_url(adventure_id: str, number: int) -> str:
    return f"/adventures/{adventure_id}/chapters/{number}/pictures"


def image(picture: Picture | Shown | None) -> dict | None:
    return {"src": picture_url(picture), "alt": picture.alt} if picture is not None else None


async def chapter_pictures(services, adventure_id: str, number: int) -> ChapterPictures | None:
    """The chapter's pictures as stored now; None without an image model (pages show no slots)."""
    if not services.settings.pictures:
        return None
    return await services.pictures.chapter_pictures(adventure_id, number)


def scene_slot(services, adventure_id: str, number: int, pictures: ChapterPictures | None = None) -> dict | None:
    """The context of a chapter's slot; `pictures` None: nothing is stored yet, all is to come."""
    if not services.settings.pictures:
        return None
    if pictures is None:
        pictures = ChapterPictures(number, scene_state=SlotState.PENDING,
                                   options_state=SlotState.PENDING if number == 1 else SlotState.NONE)
    return {"number": number, "state": pictures.scene_state, "image": image(pictures.scene),
            "stream_url": None if pictures.settled else stream_url(adventure_id, number)}


def option_slots(pictures: ChapterPictures | None, count: int) -> list[dict]:
    """The slots beside the first chapter's choices; `pictures` None: all are to come."""
    return [{"number": n, "state": pictures.option_state(n) if pictures else SlotState.PENDING,
             "image": image(pictures.options.get(n)) if pictures else None} for n in range(1, count + 1)]


async def picture_events(services, adventure: Adventure, number: int) -> AsyncIterator[ServerSentEvent]:
    """Each of the chapter's pictures once it exists, as an out-of-band swap into its own slot
    (whose id names the chapter, or the choice); then `close`, once nothing more will come."""
    deadline = time.monotonic() + STREAM_SECONDS
    sent: set[int] = set()
    writing_seen, finished_at = False, None
    news = services.picture_news
    heard: ChapterPictures | None = None  # what the slots show, as the last news said
    with news.following(adventure.id, number) as wait:
        while (left := deadline - time.monotonic()) > 0:
            if services.writer.writing(adventure.id, number):
                # Nothing can show before the chapter is finished, and its end is news: no
                # look at the store while it streams.
                writing_seen = True
                heard = await wait(min(RECHECK_SECONDS, left))
                continue
            if heard is None and news.drawn_here(adventure.id, number):
                # Its picture is being drawn here, and the news of its end says what the slots
                # show: no look at the store.
                heard = await wait(min(RECHECK_SECONDS, left))
                continue
            pictures = heard or await services.pictures.chapter_pictures(adventure.id, number, background=True)
            heard = None
            finished = pictures.chapter_state == ChapterState.COMPLETE
            writing_seen = writing_seen or not finished
            if finished and writing_seen and finished_at is None:
                finished_at = time.monotonic()
            # A page loaded after the chapter was finished has its choices; one that saw it
            # being written gets them in another response, which is given time to arrive
            # first (only the first chapter's choices have pictures).
            choices_shown = finished and (finished_at is None or number != 1
                                          or time.monotonic() >= finished_at + CHOICES_ARRIVE_SECONDS)
            for key, slot_id, picture in _shown(pictures, choices_shown):
                if key not in sent:
                    sent.add(key)
                    yield await _event(services, slot_id, picture)
            if pictures.settled and (not finished or sent >= _present(pictures)):
                break
            pause = RECHECK_SECONDS
            if finished and not choices_shown:
                pause = finished_at + CHOICES_ARRIVE_SECONDS - time.monotonic()
            heard = await wait(max(0.0, min(pause, left)))
    yield ServerSentEvent(data="done", event="close")


def _shown(pictures: ChapterPictures, choices_shown: bool) -> list[tuple[int, str, Shown]]:
    """(key, slot id, picture) of each picture that may go to the page now."""
    shown = [(SCENE, f"chapter-picture-{pictures.number}", pictures.scene)] if pictures.scene else []
    if choices_shown:
        shown += [(n, f"option-picture-{n}", p) for n, p in sorted(pictures.options.items())]
    return shown


def _present(pictures: ChapterPictures) -> set[int]:
    return ({SCENE} if pictures.scene is not None else set()) | set(pictures.options)


async def _event(services, slot_id: str, picture: Shown) -> ServerSentEvent:
    html = await services.pages.render("_picture_swap.html", slot_id=slot_id, image=image(picture))
    return ServerSentEvent(data=" ".join(html.split()), event="picture")


def picture_response(request: Request, picture: Served) -> Response:
    headers = {"ETag": f'"{picture.digest}"', "Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"}
    if picture.digest in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(picture.data, media_type=picture.content_type, headers=headers)
