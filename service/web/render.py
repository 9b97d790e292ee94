"""Templates: one Jinja environment with autoescaping on, rendered asynchronously so a
chapter page can stream while the chapter is written. Model text only ever reaches the
page through autoescaped variables or `escape`.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from service.domain.fidelity import Legend, is_lesson_check
from service.domain.formatting import PARAGRAPH_BREAK
from service.domain.lifecycle import StreamEvent
from service.store.pictures import ChapterPictures
from service.web.pictures import option_slots

DEFAULT_LEGEND = "What do you do next?"


class Pages:
    def __init__(self, templates_dir: Path, pictures: bool = False):
        # With an image model, the first chapter's choices each have a picture slot beside them.
        self.pictures = pictures
        self.env = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=select_autoescape(default=True),
            enable_async=True,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates change with a release, not while the server runs: no file check on
            # every render (one stat per SSE event's template, seen in profiles at load).
            auto_reload=False,
        )
        self.env.globals["StreamEvent"] = StreamEvent
        self.env.filters["paragraph_breaks"] = paragraph_breaks
        self.env.tests["lesson_check"] = is_lesson_check

    async def render(self, name: str, **context) -> str:
        return await self.env.get_template(name).render_async(**context)

    def stream(self, name: str, **context) -> AsyncIterator[str]:
        return self.env.get_template(name).generate_async(**context)

    # The parts of a chapter that its events carry (see web/chapter_events.py).
    async def paragraphs(self, paragraphs: Sequence[str]) -> str:
        return (await self.render("_paragraphs.html", paragraphs=paragraphs)).strip()

    async def choices(self, adventure_id: str, number: int, choices: Sequence[str], legend: Legend | None = None,
                      pictures: ChapterPictures | None = None) -> str:
        """The choice forms; `pictures`: the first chapter's, as far as they are known."""
        slots = option_slots(pictures, len(choices)) if self.pictures and number == 1 and choices else None
        html = await self.render("_choices.html", adventure_id=adventure_id, number=number, choices=choices,
                                 legend=legend or Legend(DEFAULT_LEGEND), option_slots=slots)
        return html.strip()

    async def error(self, adventure_id: str, number: int, message: str) -> str:
        html = await self.render("_chapter_error.html", adventure_id=adventure_id, number=number, message=message)
        return html.strip()


def markup(html: str) -> Markup:
    """HTML that this service rendered itself (never model text)."""
    return Markup(html)


def paragraph_breaks(escaped: Markup) -> Markup:
    """Escaped story text as the inside of paragraphs: each break closes one and opens the
    next. A page streamed as HTML gets its paragraphs as they form; the browser's parser
    closes the last one when the draft's element ends."""
    return Markup(str(escaped).replace(PARAGRAPH_BREAK, "</p>\n<p>"))
