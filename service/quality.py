"""The quality table of `python -m service evaluate`: what the played chapters were like
(length, reading grade, repeats, choices, summaries, titles) and how long their first text
took, from the chapters, summaries and quality records the store kept.
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

import textstat

from service.domain.fidelity import story_text
from service.domain.paragraphs import split_sentences
from service.domain.screen_rules import ANSWER, INSTRUCTIONS, UNFIT
from service.domain.story import ChapterType

SHORT_CHAPTER_WORDS = 60
# A sentence this long that shows twice in one chapter is a repeat, not a coincidence.
REPEAT_SENTENCE_WORDS = 4


@dataclass
class Played:
    """One chapter as evaluated: its stored row, its bank question, and its summary."""

    chapter: object
    question: str | None = None
    title: str | None = None

    @property
    def text(self) -> str:
        return story_text(self.chapter.text)

    @property
    def quality(self) -> dict:
        return self.chapter.quality or {}

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def grade(self) -> float | None:
        return textstat.flesch_kincaid_grade(self.text) if self.words else None

    @property
    def repeated_sentences(self) -> int:
        sentences = [" ".join(s.casefold().split()) for s in split_sentences(" ".join(self.text.split()))]
        counts = Counter(s for s in sentences if len(s.split()) >= REPEAT_SENTENCE_WORDS)
        return sum(n - 1 for n in counts.values())


@dataclass
class Report:
    chapters: list[Played] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        q = [c.quality for c in self.chapters]
        chosen = [x for x in q if x.get("choices") in ("model", "repaired", "fallback")]
        formatted = [x for x in q if x.get("choices_format")]
        lessons = [c for c in self.chapters if c.chapter.type == ChapterType.LESSON]
        ttft = [c.chapter.first_token_seconds for c in self.chapters if c.chapter.first_token_seconds is not None]
        first_text = [x["first_text_seconds"] for x in q if x.get("first_text_seconds") is not None]
        rates = [x["tokens"] / x["stream_seconds"] for x in q if x.get("stream_seconds")]
        grades = [g for g in (c.grade for c in self.chapters) if g is not None]
        return [
            ("chapters written", str(len(self.chapters))),
            (f"chapters under {SHORT_CHAPTER_WORDS} words",
             str(sum(c.words < SHORT_CHAPTER_WORDS for c in self.chapters))),
            ("words per chapter, median (range)", _median_range([c.words for c in self.chapters], "{:.0f}")),
            ("reading grade (Flesch–Kincaid), median (range)", _median_range(grades, "{:.1f}")),
            ("repeated sentences shown", str(sum(c.repeated_sentences for c in self.chapters))),
            ("choices format-valid unaided", _share(sum(x["choices_format"] == "valid" for x in formatted),
                                                    len(formatted))),
            ("choices valid unaided", _share(sum(x["choices"] == "model" for x in chosen), len(chosen))),
            ("choices valid after repair call", _share(
                sum(x["choices"] in ("model", "repaired") for x in chosen), len(chosen))),
            ("choices from the fallback", _share(sum(x["choices"] == "fallback" for x in chosen), len(chosen))),
            ("summaries from the model", _share(sum(x.get("summary") == "model" for x in q), len(q))),
            ("distinct titles per adventure", self._distinct_titles()),
            ("paragraphs per chapter (mean)", _mean([x.get("paragraphs", 0) for x in q])),
            # Unasked ones show as the legend over their answers (domain/fidelity.py).
            ("lesson questions asked word for word in the story", _share(
                sum(_normal(c.question) in _normal(c.text) for c in lessons), len(lessons))),
            ("repetition or length stops", str(sum(bool(x.get("stopped")) for x in q))),
            ("time to first text, median (range) (s)", _median_range(first_text, "{:.2f}")),
            ("time to first token, median (s)", _mean(ttft, statistics.median)),
            ("tokens per second (mean)", _mean(rates)),
        ]

    def _distinct_titles(self) -> str:
        by_adventure: dict[str, list[str]] = {}
        for c in self.chapters:
            by_adventure.setdefault(c.chapter.adventure_id, []).append(c.title or "")
        return ", ".join(f"{len({t.casefold() for t in titles if t})}/{len(titles)}"
                         for titles in by_adventure.values()) or "n/a"

    def per_chapter(self) -> list[str]:
        lines = ["| adventure | chapter | type | words | grade | first text (s) | stopped | choices | summary "
                 "| title |", "|---|---:|---|---:|---:|---:|---|---|---|---|"]
        for c in self.chapters:
            x, grade, first = c.quality, c.grade, c.quality.get("first_text_seconds")
            lines.append(f"| {c.chapter.adventure_id} | {c.chapter.number} | {c.chapter.type} | {c.words} | "
                         f"{'–' if grade is None else f'{grade:.1f}'} | {'–' if first is None else f'{first:.2f}'} | "
                         f"{x.get('stopped') or '–'} | {x.get('choices', '–')} | {x.get('summary', '–')} | "
                         f"{c.title or '–'} |")
        return lines

    def screened(self) -> list[tuple[str, str, int, int, int]]:
        """Per adventure: unfit sentences dropped by category, instruction echoes dropped,
        sentences naming a lesson's answer dropped, and markdown marks cleaned."""
        by_adventure: dict[str, Counter] = {}
        for c in self.chapters:
            by_adventure.setdefault(c.chapter.adventure_id, Counter()).update(c.quality.get("screened") or {})
        rows = []
        for adventure, counts in by_adventure.items():
            unfit = ", ".join(f"{category} {counts[category]}" for category in UNFIT if counts[category]) or "none"
            rows.append((adventure, unfit, counts[INSTRUCTIONS], counts[ANSWER], counts["markdown"]))
        return rows

    def markdown(self) -> str:
        lines = ["| measure | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in self.rows()]
        lines += ["", "Each chapter:", "", *self.per_chapter()]
        lines += ["", "What the child-safety screen took out, per adventure:", "",
                  "| adventure | unfit sentences dropped | instruction echoes dropped | answers named, dropped "
                  "| markdown cleaned |", "|---|---|---:|---:|---:|"]
        lines += [f"| {a} | {unfit} | {echoes} | {answers} | {marks} |"
                  for a, unfit, echoes, answers, marks in self.screened()]
        return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f} %)" if total else "n/a"


def _mean(values: list[float], how=statistics.fmean) -> str:
    return f"{how(values):.2f}" if values else "n/a"


def _median_range(values: list[float], form: str) -> str:
    if not values:
        return "n/a"
    return f"{form.format(statistics.median(values))} ({form.format(min(values))} to {form.format(max(values))})"


def _normal(text: str | None) -> str:
    return " ".join((text or "").casefold().split())
