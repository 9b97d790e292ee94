"""The summary page: every chapter's title and summary, every lesson question with the
player's answer, and the statistics. Summaries still being written are waited for a
while; failed ones get one more attempt when the page asks.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

from service.chapters.briefs import question_for
from service.domain.story import CHAPTER_COUNT, ChapterType
from service.domain.summaries import extract_summary
from service.store.models import Adventure


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


async def wait_for_summaries(services, adventure: Adventure, wait_seconds: float) -> set[int]:
    """Chapter numbers whose summary is still missing after waiting up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    retried = False
    while True:
        chapters = [c for c in await services.store.chapters(adventure.id) if c.state == "complete"]
        summaries = await services.store.summaries(adventure.id)
        missing = {c.number for c in chapters} - set(summaries)
        jobs = {j.chapter_number: j for j in await services.jobs.for_adventure(adventure.id) if j.kind == "summary"}
        if any(jobs.get(n) and jobs[n].state == "failed" for n in missing) and not retried:
            await services.jobs.retry(adventure.id, "summary")
            services.runner.wake()
            retried = True
            continue
        waiting = [n for n in missing if jobs.get(n) and jobs[n].state in ("pending", "running")]
        left = deadline - time.monotonic()
        if not waiting or left <= 0:
            return missing
        await services.runner.changed(min(left, 1.0))


async def summary(services, adventure: Adventure, wait_seconds: float = 20.0) -> str:
    missing = await wait_for_summaries(services, adventure, wait_seconds)
    chapters = [c for c in await services.store.chapters(adventure.id) if c.state == "complete"]
    summaries = await services.store.summaries(adventure.id)
    answers = {a.chapter_number: a for a in await services.store.answers(adventure.id)}
    items = []
    for chapter in chapters:
        stored = summaries.get(chapter.number)
        title, text = (stored.title, stored.summary) if stored else extract_summary(chapter.text, chapter.number)
        answer = answers.get(chapter.number)
        items.append({"number": chapter.number, "title": title, "summary": text,
                      "choice": answer.choice if answer else None})
    questions = []
    for number, kind in enumerate(adventure.plan, start=1):
        if kind == ChapterType.LESSON and (question := question_for(services.catalog, adventure, number)):
            answer = answers.get(number)
            questions.append({"question": question.question, "answer": answer.choice if answer else None,
                              "correct": bool(answer and answer.correct), "correct_answer": question.correct_answer,
                              "explanation": question.explanation})
    last = max([_aware(a.created_at) for a in answers.values()] + [_aware(adventure.created_at)])
    ended = _aware(adventure.finished_at) if adventure.finished_at else last
    return await services.pages.render(
        "summary.html", adventure_id=adventure.id, world_name=services.catalog.worlds[adventure.world_key].name,
        chapters=items, questions=questions, correct=sum(q["correct"] for q in questions),
        chapter_count=CHAPTER_COUNT, pending=sorted(missing),
        time_spent=_duration((ended - _aware(adventure.created_at)).total_seconds()),
    )
