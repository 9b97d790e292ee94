"""What each kind of job does (pictures: service/jobs/pictures.py). A job returns the write
that stores its result, and the runner stores it with the job's `done`. Each is idempotent:
running one twice leaves one result.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from service.chapters.briefs import question_for
from service.chapters.screening import log_hits
from service.domain.fidelity import story_text
from service.domain.story import Catalog, ChapterType
from service.domain.summaries import extract_summary, parse_characters, parse_summary, same_title, title_fits
from service.jobs.screen_process import ScreenProcess
from service.llm.client import ModelClient
from service.llm.formats import CHARACTERS, SUMMARY, summary_in_own_words
from service.llm.prompts import characters_messages, summary_messages
from service.store.adventures import AdventureStore, ResultWrite, characters_merged, summary_saved
from service.store.models import Job

log = logging.getLogger(__name__)
# Replies asked for a summary before an extract of the chapter stands in.
SUMMARY_ATTEMPTS = 3

JobHandler = Callable[[Job], Awaitable[ResultWrite | None]]


class ChapterJobs:
    """The jobs run after a chapter's stream: its summary and its characters, both written
    from the story without the lesson bank's feedback, and both screened for a child (by
    `screen`, a process of its own: jobs/screen_process.py)."""

    def __init__(self, store: AdventureStore, catalog: Catalog, model: ModelClient, screen: ScreenProcess):
        self.store = store
        self.catalog = catalog
        self.model = model
        self.screen = screen

    def handlers(self) -> dict[str, JobHandler]:
        return {"summary": self.summary, "characters": self.characters}

    async def summary(self, job: Job) -> ResultWrite:
        adventure, chapter = await self.store.adventure_at(job.adventure_id, job.chapter_number)
        lesson = chapter.type == ChapterType.LESSON
        question = question_for(self.catalog, adventure, chapter.number) if lesson else None
        story = story_text(chapter.text)
        small = self.model.local_helpers
        # A small model is held to the chapter's own words, and not asked to name the question
        # (it took the question for the title): the question is added below all the same.
        messages = summary_messages(chapter.number, story, None if small else question)
        shape = summary_in_own_words(story) if small else SUMMARY
        parsed, source = None, "extract"
        for attempt in range(SUMMARY_ATTEMPTS):
            reply = await self.model.complete(messages, shape=shape, background=True, retry=attempt > 0)
            # Screening a paragraph takes milliseconds of pure Python: away from the streams.
            parsed = await self._screened_summary(parse_summary(reply), job)
            # A small model's title may be words it made up; a larger one's may well be new words.
            fits = parsed is not None and (not small or title_fits(parsed[0], story))
            if fits and not same_title(parsed[0], await self._other_titles(job)):
                source = "model"
                break
            # A small model may ignore the format, make up a title's words, or give two chapters
            # one title: asked again, it samples another reply.
            log.info("summary of %s/%s: reply unusable, or its title made up or taken: %r", job.adventure_id,
                     job.chapter_number, reply[:200])
        if source == "extract":
            # An extract of the chapter is a truthful stand-in, and its title names the chapter.
            parsed = extract_summary(story, chapter.number)
        title, summary = parsed
        if question and question.question not in summary:
            summary = f"{summary} The question was: {question.question}"
        return summary_saved(job.adventure_id, job.chapter_number, title, summary, source)

    async def _other_titles(self, job: Job) -> list[str]:
        summaries = await self.store.summaries(job.adventure_id)
        return [s.title for number, s in summaries.items() if number != job.chapter_number]

    async def characters(self, job: Job) -> ResultWrite:
        chapter, characters = await self.store.chapter_and_characters(job.adventure_id, job.chapter_number)
        known = [(c.name, c.description) for c in characters]
        reply = await self.model.complete(characters_messages(chapter.number, story_text(chapter.text), known),
                                          shape=CHARACTERS, background=True)
        found = await self._screened_characters(parse_characters(reply), job)
        return characters_merged(job.adventure_id, found)

    async def _screened_characters(self, characters: dict[str, str], job: Job) -> dict[str, str]:
        screened = await self.screen.clean_all([(text, ()) for name, description in characters.items()
                                                for text in (name, description)])
        found = {}
        for number, name in enumerate(characters):  # each name's screening, then its description's
            (_, name_hits), (description, hits) = screened[2 * number:2 * number + 2]
            log_hits([*name_hits, *hits], "a character", job.adventure_id, job.chapter_number)
            if not name_hits and description:
                found[name] = description
        return found

    async def _screened_summary(self, parsed: tuple[str, str] | None, job: Job) -> tuple[str, str] | None:
        """The title and summary without what the child-safety screen drops; None when the
        title is dropped or too little is left to stand as a summary."""
        if parsed is None:
            return None
        title, summary = parsed
        (kept_title, title_hits), (summary, hits) = await self.screen.clean_all([(title, ()), (summary, ())])
        log_hits([*title_hits, *hits], "the summary", job.adventure_id, job.chapter_number)
        if title_hits or not kept_title:
            return None
        return parse_summary(f"Title: {title}\nSummary: {summary}")  # checks the length again
