"""The summary page: every chapter's title and summary, every lesson question with the
player's answer, and the statistics. It answers at once with what is written: summaries
still being written show as such (filled in over SSE with JavaScript, by a plain Refresh
link without), failed ones offer a retry, which is a POST: reading the page changes nothing.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent

from service.chapters.briefs import question_for
from service.domain.fidelity import story_text
from service.domain.lifecycle import ChapterState, JobState
from service.domain.story import CHAPTER_COUNT, ChapterType
from service.domain.summaries import extract_summary
from service.store.models import Adventure, as_utc
from service.web.pictures import image

# How long the summary stream waits for the last summaries before it closes.
STREAM_SECONDS = 300.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


async def _summary_states(services, adventure: Adventure) -> dict[int, str]:
    """For each finished chapter: done, pending (a job will still write it) or failed."""
    chapters = [c.number for c in await services.store.chapters(adventure.id) if c.state == ChapterState.COMPLETE]
    summaries = await services.store.summaries(adventure.id)
    jobs = {j.chapter_number: j.state for j in await services.jobs.for_adventure(adventure.id) if j.kind == "summary"}
    return {n: "done" if n in summaries else ("failed" if jobs.get(n) == JobState.FAILED else "pending")
            for n in chapters}


async def retry_summaries(services, adventure: Adventure) -> None:
    await services.jobs.retry(adventure.id, "summary")
    services.runner.wake()


async def _items(services, adventure: Adventure, states: dict[int, str]) -> list[dict]:
    chapters = {c.number: c for c in await services.store.chapters(adventure.id)}
    summaries = await services.store.summaries(adventure.id)
    answers = {a.chapter_number: a.choice for a in await services.store.answers(adventure.id)}
    scenes = await services.pictures.scenes(adventure.id) if services.settings.pictures else {}
    items = []
    for number, state in sorted(states.items()):
        stored = summaries.get(number)
        if stored:
            title, text = stored.title, stored.summary
        else:
            title, text = extract_summary(story_text(chapters[number].text), number)
        items.append({"number": number, "title": title, "summary": text, "state": state,
                      "choice": answers.get(number), "image": image(scenes.get(number))})
    return items


def _questions(services, adventure: Adventure, answers: dict) -> list[dict]:
    questions = []
    for number, kind in enumerate(adventure.plan, start=1):
        if kind == ChapterType.LESSON and (question := question_for(services.catalog, adventure, number)):
            answer = answers.get(number)
            questions.append({"question": question.question, "answer": answer.choice if answer else None,
                              "correct": bool(answer and answer.correct), "correct_answer": question.correct_answer,
                              "explanation": question.explanation})
    return questions


async def summary(services, adventure: Adventure) -> str:
    states = await _summary_states(services, adventure)
    items = await _items(services, adventure, states)
    answers = {a.chapter_number: a for a in await services.store.answers(adventure.id)}
    questions = _questions(services, adventure, answers)
    last = max([as_utc(a.created_at) for a in answers.values()] + [as_utc(adventure.created_at)])
    ended = as_utc(adventure.finished_at) if adventure.finished_at else last
    return await services.pages.render(
        "summary.html", adventure_id=adventure.id, world_name=services.catalog.worlds[adventure.world_key].name,
        chapters=items, questions=questions, correct=sum(q["correct"] for q in questions),
        chapter_count=CHAPTER_COUNT, pending=[i["number"] for i in items if i["state"] == "pending"],
        time_spent=_duration((ended - as_utc(adventure.created_at)).total_seconds()),
    )


async def summary_events(services, adventure: Adventure) -> AsyncIterator[ServerSentEvent]:
    """Each summary as it is written, as the HTML of its list item; `summaries-done` once
    none is pending; then `close` (also when the stream's time is up first)."""
    deadline = time.monotonic() + STREAM_SECONDS
    sent: set[int] = set()
    while time.monotonic() < deadline:
        states = await _summary_states(services, adventure)
        settled = {n for n, state in states.items() if state != "pending"} - sent
        for item in await _items(services, adventure, {n: states[n] for n in sorted(settled)}):
            html = await services.pages.render("_summary_item.html", item=item, adventure_id=adventure.id)
            yield ServerSentEvent(data=html.strip(), event=f"summary-{item['number']}")
        sent |= settled
        if "pending" not in states.values():
            yield ServerSentEvent(data="done", event="summaries-done")  # the page's "still being written" goes
            break
        await services.runner.changed(5.0)
    yield ServerSentEvent(data="done", event="close")
