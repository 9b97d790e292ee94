"""What the pages show of the pictures: a chapter's slot (and, in the first chapter, the one
beside each choice), the stream that fills a page's waiting slots as pictures are drawn
(the summary page's pattern: its own small SSE endpoint, one per page, which goes on from
chapter to chapter as the page's choices swap them in), and the pictures themselves.
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
from service.domain.story import CHAPTER_COUNT
from service.store.models import Adventure, Picture
from service.store.pictures import SCENE, ChapterPictures, Shown

# A page's picture stream ends after this long without news of its adventure's pictures.
IDLE_SECONDS = 900.0
# Without news, a stream looks again this often. News comes with every picture job's end,
# also from other processes (over Redis): this is the fallback, and each look is a read of
# the store (at 50 players, looking every 5 s, three queries a look, took 40 % of a core).
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


def stream_url(services, adventure_id: str, number: int) -> str | None:
    """The picture stream of a page that shows chapter `number`; None without an image model."""
    return f"/adventures/{adventure_id}/chapters/{number}/pictures" if services.settings.pictures else None


def image(picture: Picture | Shown | None) -> dict | None:
    return {"src": picture_url(picture), "alt": picture.alt} if picture is not None else None


async def chapter_pictures(services, adventure_id: str, number: int) -> ChapterPictures | None:
    """The chapter's pictures as stored now; None without an image model (pages show no slots)."""
    if not services.settings.pictures:
        return None
    return await services.pictures.chapter_pictures(adventure_id, number)


def scene_slot(services, number: int, pictures: ChapterPictures | None = None) -> dict | None:
    """The context of a chapter's slot; `pictures` None: nothing is stored yet, all is to come."""
    if not services.settings.pictures:
        return None
    if pictures is None:
        pictures = ChapterPictures(number, scene_state=SlotState.PENDING,
                                   options_state=SlotState.PENDING if number == 1 else SlotState.NONE)
    return {"number": number, "state": pictures.scene_state, "image": image(pictures.scene)}


def option_slots(pictures: ChapterPictures | None, count: int) -> list[dict]:
    """The slots beside the first chapter's choices; `pictures` None: all are to come."""
    return [{"number": n, "state": pictures.option_state(n) if pictures else SlotState.PENDING,
             "image": image(pictures.options.get(n)) if pictures else None} for n in range(1, count + 1)]


async def picture_events(services, adventure: Adventure, number: int) -> AsyncIterator[ServerSentEvent]:
    """The pictures of a page that shows chapter `number`, each once it exists, as an
    out-of-band swap into its own slot (whose id names the chapter, or the choice). A page
    shows one chapter at a time; with JavaScript its choices swap the next one in, and the
    page's one stream follows that one from then on: once it is news, or being written here.
    `close` once the last chapter's pictures are all shown; after IDLE_SECONDS without news
    the stream ends without it, and the browser opens it again."""
    chapter = _Chapter(number)
    deadline = time.monotonic() + IDLE_SECONDS
    heard: dict[int, ChapterPictures | None] = {}
    with services.picture_news.following(adventure.id) as wait:
        while (left := deadline - time.monotonic()) > 0:
            later = max(heard, default=0)
            if later > chapter.number or services.writer.writing(adventure.id, chapter.number + 1):
                chapter = _Chapter(max(later, chapter.number + 1))  # the page's choice led there
            if not chapter.done or chapter.number in heard:
                for slot_id, picture in await chapter.look(services, adventure.id, heard.get(chapter.number)):
                    yield await _event(services, slot_id, picture)
            if chapter.done and chapter.finished and chapter.number >= CHAPTER_COUNT:  # (a failed one is retried)
                yield ServerSentEvent(data="done", event="close")
                return
            heard = await wait(max(0.0, min(chapter.pause, left)))
            if heard:
                deadline = time.monotonic() + IDLE_SECONDS


class _Chapter:
    """What a page's picture stream has sent of one chapter's pictures, and when it looks again."""

    def __init__(self, number: int):
        self.number = number
        self.sent: set[int] = set()
        self.writing_seen = False
        self.finished_at: float | None = None
        self.finished = False  # its story is complete
        self.done = False  # all is shown, or will never be: only news of it is looked at
        self.pause = RECHECK_SECONDS  # without news, the next look after this long

    async def look(self, services, adventure_id: str, heard: ChapterPictures | None) -> list[tuple[str, Shown]]:
        """The chapter's pictures not sent yet that may go to the page now (slot id, picture);
        `heard`: what its slots show, if the news said so."""
        self.done, self.pause = False, RECHECK_SECONDS
        if services.writer.writing(adventure_id, self.number):
            # Nothing can show before the chapter is finished, and its end is news: no look at
            # the store while it streams.
            self.writing_seen = True
            return []
        if heard is None and services.picture_news.drawn_here(adventure_id, self.number):
            # Its picture is being drawn here, and the news of its end says what the slots
            # show: no look at the store.
            return []
        pictures = heard or await services.pictures.chapter_pictures(adventure_id, self.number, background=True)
        self.finished = finished = pictures.chapter_state == ChapterState.COMPLETE
        self.writing_seen = self.writing_seen or not finished
        if finished and self.writing_seen and self.finished_at is None:
            self.finished_at = time.monotonic()
        # A page loaded after the chapter was finished has its choices; one that saw it being
        # written gets them in another response, which is given time to arrive first (only
        # the first chapter's choices have pictures).
        choices_at = None if self.finished_at is None or self.number != 1 else self.finished_at + CHOICES_ARRIVE_SECONDS
        choices_shown = finished and (choices_at is None or time.monotonic() >= choices_at)
        new = [(key, slot_id, picture) for key, slot_id, picture in _shown(pictures, choices_shown)
               if key not in self.sent]
        self.sent.update(key for key, _, _ in new)
        if pictures.settled and (not finished or self.sent >= _present(pictures)):
            self.done, self.pause = True, IDLE_SECONDS
        elif finished and not choices_shown:
            self.pause = choices_at - time.monotonic()
        return [(slot_id, picture) for _, slot_id, picture in new]


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
