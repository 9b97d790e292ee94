"""What each kind of job does (pictures: service/jobs/pictures.py). A job returns the write
that stores its result, and the runner stores it with the job's `done`. Each is idempotent:
running one twice leaves one result.
"""
from __future__ import annotations

import logging

from service.chapters.briefs import question_for
from service.chapters.screening import ChildSafety, log_hits
from service.domain.fidelity import story_text
from service.domain.summaries import extract_summary, parse_characters, parse_summary, same_title, title_fits
from service.jobs.pictures import option_pictures_job, scene_picture_job
from service.llm.formats import CHARACTERS, SUMMARY
from service.llm.prompts import characters_messages, summary_messages
from service.store.adventures import OPTIONS_JOB, SCENE_JOB, ResultWrite, characters_merged, summary_saved
from service.store.models import Job

log = logging.getLogger(__name__)
# Replies asked for a summary before an extract of the chapter stands in.
SUMMARY_ATTEMPTS = 3


async def summary_job(services, job: Job) -> ResultWrite:
    adventure, chapter = await services.store.adventure_at(job.adventure_id, job.chapter_number)
    question = question_for(services.catalog, adventure, chapter.number) if chapter.type == "LESSON" else None
    story = story_text(chapter.text)
    messages = summary_messages(chapter.number, story, question)
    parsed, source = None, "extract"
    for _ in range(SUMMARY_ATTEMPTS):
        reply = await services.model.complete(messages, shape=SUMMARY, background=True)
        parsed = _screened_summary(services.safety, parse_summary(reply), job)
        # A small model's title may be words it made up; a larger one's may well be new words.
        fits = parsed is not None and (not services.model.local_helpers or title_fits(parsed[0], story))
        if fits and not same_title(parsed[0], await _other_titles(services, job)):
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


async def _other_titles(services, job: Job) -> list[str]:
    summaries = await services.store.summaries(job.adventure_id)
    return [s.title for number, s in summaries.items() if number != job.chapter_number]


async def characters_job(services, job: Job) -> ResultWrite:
    chapter, characters = await services.store.chapter_and_characters(job.adventure_id, job.chapter_number)
    known = [(c.name, c.description) for c in characters]
    reply = await services.model.complete(characters_messages(chapter.number, story_text(chapter.text), known),
                                          shape=CHARACTERS, background=True)
    found = {}
    for name, description in parse_characters(reply).items():
        _, name_hits = services.safety.clean(name)
        description, hits = services.safety.clean(description)
        log_hits([*name_hits, *hits], "a character", job.adventure_id, job.chapter_number)
        if not name_hits and description:
            found[name] = description
    return characters_merged(job.adventure_id, found)


def _screened_summary(safety: ChildSafety, parsed: tuple[str, str] | None, job: Job) -> tuple[str, str] | None:
    """The title and summary without what the child-safety screen drops; None when the
    title is dropped or too little is left to stand as a summary."""
    if parsed is None:
        return None
    title, summary = parsed
    kept_title, title_hits = safety.clean(title)
    summary, hits = safety.clean(summary)
    log_hits([*title_hits, *hits], "the summary", job.adventure_id, job.chapter_number)
    if title_hits or not kept_title:
        return None
    return parse_summary(f"Title: {title}\nSummary: {summary}")  # checks the length again


HANDLERS = {"summary": summary_job, "characters": characters_job,
            SCENE_JOB: scene_picture_job, OPTIONS_JOB: option_pictures_job}
