"""What each kind of job does. A job returns the write that stores its result, and the
runner stores it with the job's `done`. Each is idempotent: running one twice leaves one result.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from service.chapters.briefs import question_for
from service.domain.story import Catalog, ChapterType
from service.domain.summaries import extract_summary, parse_characters, parse_summary
from service.llm.client import ModelClient
from service.llm.prompts import characters_messages, summary_messages
from service.store.adventures import AdventureStore, ResultWrite, characters_merged, summary_saved
from service.store.models import Job

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[ResultWrite]]


class ChapterJobs:
    """The jobs run after a chapter's stream: its summary and its characters."""

    def __init__(self, store: AdventureStore, catalog: Catalog, model: ModelClient):
        self.store = store
        self.catalog = catalog
        self.model = model

    def handlers(self) -> dict[str, JobHandler]:
        return {"summary": self.summary, "characters": self.characters}

    async def summary(self, job: Job) -> ResultWrite:
        adventure, chapter = await self.store.adventure_at(job.adventure_id, job.chapter_number)
        lesson = chapter.type == ChapterType.LESSON
        question = question_for(self.catalog, adventure, chapter.number) if lesson else None
        reply = await self.model.complete(summary_messages(chapter.number, chapter.text, question))
        parsed = parse_summary(reply)
        if parsed is None:
            # A small model may ignore the format; an extract of the chapter is a truthful stand-in.
            log.info("summary of %s/%s: reply unusable, using an extract", job.adventure_id, job.chapter_number)
            parsed = extract_summary(chapter.text, chapter.number)
        title, summary = parsed
        if question and question.question not in summary:
            summary = f"{summary} The question was: {question.question}"
        return summary_saved(job.adventure_id, job.chapter_number, title, summary)

    async def characters(self, job: Job) -> ResultWrite:
        chapter, characters = await self.store.chapter_and_characters(job.adventure_id, job.chapter_number)
        known = [(c.name, c.description) for c in characters]
        reply = await self.model.complete(characters_messages(chapter.number, chapter.text, known))
        return characters_merged(job.adventure_id, parse_characters(reply))
