"""Builds what each page shows from the store and renders it. Views call these; these
call the game's repositories and the templates, never the model.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from markupsafe import Markup

from service.chapters.briefs import question_for
from service.chapters.writer import Generation
from service.domain.fidelity import Legend, lesson_legend
from service.domain.story import CHAPTER_COUNT, ChapterType
from service.store.models import Adventure, Chapter
from service.store.pictures import ChapterPictures
from service.web import pictures

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


@dataclass
class StreamOutcome:
    """Filled in while a progressive page streams; the template reads it after the text."""

    added: list[str] = field(default_factory=list)
    choices_html: Markup = Markup("")
    error_html: Markup = Markup("")


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
        "picture_slot": pictures.scene_slot(services, adventure.id, number, found),
    }


def legend_for(services, adventure: Adventure, chapter: Chapter) -> Legend | None:
    kind = ChapterType(chapter.type)
    question = question_for(services.catalog, adventure, chapter.number) if kind is ChapterType.LESSON else None
    return lesson_legend(kind, question, chapter.text)


async def chapter(services, adventure: Adventure, number: int) -> str:
    """A chapter that is finished, failed or interrupted: everything is in the HTML."""
    stored = await services.store.chapter(adventure.id, number)
    answers = {a.chapter_number: a.choice for a in await services.store.answers(adventure.id)}
    found = await pictures.chapter_pictures(services, adventure.id, number)
    context = _chapter_context(services, adventure, number, found)
    context["paragraphs"] = [p for p in stored.text.split("\n\n") if p] if stored.state == "complete" else []
    context["answered"] = answers.get(number)
    context["message"] = None if stored.state == "complete" else unfinished_message(stored)
    context["choices_html"] = Markup(await services.pages.choices(
        adventure.id, number, stored.choices, legend_for(services, adventure, stored), found,
    )) if stored.state == "complete" else Markup("")
    return await services.pages.render("chapter.html", **context)


def unfinished_message(stored: Chapter) -> str:
    if stored.state == "interrupted":
        return "This chapter was interrupted before it was finished. Your earlier chapters and answers are safe."
    return stored.error or "This chapter could not be written."


def streaming_chapter(services, adventure: Adventure, stored: Chapter, generation: Generation) -> AsyncIterator[str]:
    """The whole page, streamed while the chapter is written: no JavaScript needed."""
    outcome = StreamOutcome()

    async def pieces() -> AsyncIterator[Markup]:
        async for event in generation.log.follow(0):
            if event.event == "chunk":
                yield Markup(event.data)  # escaped by the writer's renderer
            elif event.event == "choices":
                outcome.choices_html = Markup(event.data)
            elif event.event == "chapter-error":
                outcome.error_html = Markup(event.data)
        if generation.finished is not None:
            outcome.added = generation.finished.added
            if stored.number == 1 and services.settings.pictures:
                outcome.choices_html = await _choices_with_pictures(services, adventure, stored, generation)

    context = _chapter_context(services, adventure, stored.number)
    context["waiting"] = services.writer.capacity.is_waiting(generation)
    return services.pages.stream("chapter.html", stream=pieces(), outcome=outcome, **context)


async def _choices_with_pictures(services, adventure: Adventure, stored: Chapter, generation: Generation) -> Markup:
    """The first chapter's choices with the pictures beside them drawn so far (they are drawn
    while the chapter is written): no JavaScript needed to see them."""
    found = await pictures.chapter_pictures(services, adventure.id, stored.number)
    finished = generation.finished
    return Markup(await services.pages.choices(adventure.id, stored.number, finished.choices, finished.legend, found))


async def chapter_fragment(services, adventure: Adventure, number: int) -> str:
    """The htmx answer to a choice: the next chapter, its text to arrive over SSE."""
    context = _chapter_context(services, adventure, number)
    context["sse_url"] = f"/adventures/{adventure.id}/chapters/{number}/stream"
    generation = services.writer.running(adventure.id, number)
    context["waiting"] = generation is not None and services.writer.capacity.is_waiting(generation)
    return await services.pages.render("_chapter.html", **context)
