"""Builds what each page shows from the store and renders it. Views call these; these
call the game's repositories and the templates, never the model.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from urllib.parse import urlsplit

from service.chapters.events import EventLog
from service.domain.story import CHAPTER_COUNT
from service.store.models import Adventure
from service.store.pictures import ChapterPictures
from service.web import pictures
from service.web.chapter_events import ChapterRendering

# The reader's settings: each cookie and the values it may take, the first the default.
COMFORT = {"text_size": ("normal", "large", "larger"), "contrast": ("normal", "high")}
COMFORT_COOKIE = "lanternpath_{}"
_comfort: ContextVar[Mapping[str, str]] = ContextVar(
    "comfort", default=MappingProxyType({k: v[0] for k, v in COMFORT.items()})
)


def use_comfort(env, cookies: Mapping[str, str]) -> None:
    """Lets every template this request renders read the settings through `comfort()`."""
    env.globals["comfort"] = _comfort.get
    _comfort.set({name: comfort_value(name, cookies.get(COMFORT_COOKIE.format(name))) for name in COMFORT})


def comfort_value(name: str, value: str | None) -> str:
    return value if value in COMFORT[name] else COMFORT[name][0]


def back_path(referer: str | None, host: str | None) -> str:
    """Where a settings form goes back to: the page that sent it, when that page is ours."""
    parts = urlsplit(referer or "")
    ours = bool(host) and parts.netloc.lower() == host.lower()
    if not ours or not parts.path.startswith("/") or parts.path.startswith(("//", "/\\")):  # "//x" leaves the site
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def start(services) -> str:
    return await services.pages.render(
        "start.html", worlds=list(services.catalog.worlds.values()), topics=list(services.catalog.topics.values())
    )


def _chapter_context(services, adventure: Adventure, number: int, found: ChapterPictures | None = None) -> dict:
    return {
        "adventure_id": adventure.id,
        "number": number,
        "chapter_count": CHAPTER_COUNT,
        "world_name": services.catalog.worlds[adventure.world_key].name,
        "topic_name": services.catalog.topics[adventure.topic_key].name,
        "picture_slot": pictures.scene_slot(services, number, found),
        "waiting": _waiting(services, adventure, number),
    }


def _waiting(services, adventure: Adventure, number: int) -> bool:
    """Whether the chapter waits for a storyteller (past MAX_CONCURRENT_CHAPTERS)."""
    generation = services.writer.running(adventure.id, number)
    return generation is not None and services.writer.capacity.is_waiting(generation)


def _page_context(services, adventure: Adventure, number: int, log: EventLog, answered: str | None,
                  found: ChapterPictures | None = None) -> dict:
    async def first_pictures() -> ChapterPictures | None:
        # The first chapter's choices, with the pictures beside them drawn so far (they are
        # drawn while the chapter is written): no JavaScript needed to see them.
        return await pictures.chapter_pictures(services, adventure.id, number)

    finding = first_pictures if number == 1 and services.settings.pictures else None
    rendering = ChapterRendering(services.pages, adventure.id, number, finding)
    return {**_chapter_context(services, adventure, number, found), "events": rendering.rendered(log.follow()),
            "answered": answered, "pictures_url": pictures.stream_url(services, adventure.id, number)}


def streaming_chapter(services, adventure: Adventure, number: int, log: EventLog) -> AsyncIterator[str]:
    """The whole page, streamed while the chapter is written: its draft grows paragraph by
    paragraph, then the finished chapter follows it (and static CSS hides the draft), so
    the page ends as the finished chapter's does. No JavaScript needed."""
    return services.pages.stream("chapter.html", **_page_context(services, adventure, number, log, None))


async def chapter(services, adventure: Adventure, number: int, log: EventLog) -> str:
    """A chapter that is finished, failed or interrupted: its end (`log`) is in the HTML."""
    answers = {a.chapter_number: a.choice for a in await services.store.answers(adventure.id)}
    found = await pictures.chapter_pictures(services, adventure.id, number)
    context = _page_context(services, adventure, number, log.ending(), answers.get(number), found)
    return await services.pages.render("chapter.html", **context)


async def chapter_fragment(services, adventure: Adventure, number: int) -> str:
    """The htmx answer to a choice: the next chapter, its text to arrive over SSE. Its
    pictures come over the page's picture stream, already open (chapter.html): no second
    request beside the text's own as it starts (measured: one at that moment added 2-15 ms
    to the first text at 50 players)."""
    context = _chapter_context(services, adventure, number)
    context["sse_url"] = f"/adventures/{adventure.id}/chapters/{number}/stream"
    return await services.pages.render("_chapter.html", **context)
