"""What each kind of job does. A job returns the write that stores its result, and the
runner stores it with the job's `done`. Each is idempotent: running one twice leaves one result.
"""
from __future__ import annotations

import logging

from service.chapters.briefs import question_for
from service.domain.summaries import extract_summary, parse_characters, parse_summary
from service.llm.prompts import characters_messages, summary_messages
from service.store.adventures import ResultWrite, characters_merged, summary_saved
from service.store.models import Job

log = logging.getLogger(__name__)


async def summary_job(services, job: Job) -> ResultWrite:
    adventure, chapter = await services.store.adventure_at(job.adventure_id, job.chapter_number)
    question = question_for(services.catalog, adventure, chapter.number) if chapter.type == "LESSON" else None
    reply = await services.model.complete(summary_messages(chapter.number, chapter.text, question))
    parsed = parse_summary(reply)
    if parsed is None:
        # A small model may ignore the format; an extract of the chapter is a truthful stand-in.
        log.info("summary of %s/%s: reply unusable, using an extract", job.adventure_id, job.chapter_number)
        parsed = extract_summary(chapter.text, chapter.number)
    title, summary = parsed
    if question and question.question not in summary:
        summary = f"{summary} The question was: {question.question}"
    return summary_saved(job.adventure_id, job.chapter_number, title, summary)


async def characters_job(services, job: Job) -> ResultWrite:
    chapter, characters = await services.store.chapter_and_characters(job.adventure_id, job.chapter_number)
    known = [(c.name, c.description) for c in characters]
    reply = await services.model.complete(characters_messages(chapter.number, chapter.text, known))
    return characters_merged(job.adventure_id, parse_characters(reply))


HANDLERS = {"summary": summary_job, "characters": characters_job}
