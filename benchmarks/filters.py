"""The CPU of the stream's text filters (domain/stream_text.py VisibleText) per model token,
stage by stage, on the scripted model's chapters: the part of the token path that is
Lanternpath's own, measured on its own, where a whole server's CPU per token varies by tens
of microseconds from run to run. `python -m benchmarks --filters`.

Each chapter (story and choices block) is fed whole, as the model sends it: word by word
(a hosted model's tokens) and in 3-character slices. Each stage's time is its own calls'
(the stages are called one after the other, never inside each other); the whole is timed
without the stages' clocks. The best of several rounds is kept: what the code costs, not
what else the machine was doing.
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from service.chapters.screening import ChildSafety
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.domain.story import ChapterType
from service.domain.stream_text import VisibleText
from service.llm.prompts import ChapterBrief
from tests.support.scripted_replies import split_chunks, story_replies

# The stages in the order a token meets them (VisibleText's attributes).
STAGES = ("choices", "markdown", "heading", "guard", "formatter", "screen")
CHUNKINGS = {"word tokens": {}, "3-character slices": {"chunk_chars": 3}}
ROUNDS = 15


class _Clocked:
    """A stage whose feed and finish add their time to `spent[name]`."""

    def __init__(self, stage, name: str, spent: dict[str, int]):
        self._stage, self._name, self._spent = stage, name, spent

    def feed(self, text: str) -> str:
        return self._timed(self._stage.feed, text)

    def finish(self) -> str:
        return self._timed(self._stage.finish)

    def _timed(self, call, *args) -> str:
        began = time.perf_counter_ns()
        try:
            return call(*args)
        finally:
            self._spent[self._name] += time.perf_counter_ns() - began

    def __getattr__(self, name: str):
        return getattr(self._stage, name)


def _filter(rules, spent: dict[str, int] | None) -> VisibleText:
    visible = VisibleText(rules=rules)
    if spent is not None:
        for name in STAGES:
            setattr(visible, name, _Clocked(getattr(visible, name), name, spent))
    return visible


def _round(pieces: list[list[str]], rules, spent: dict[str, int] | None) -> int:
    """Feeds every chapter once; the nanoseconds the whole took."""
    took = 0
    for chapter in pieces:
        visible = _filter(rules, spent)
        began = time.perf_counter_ns()
        for piece in chapter:
            visible.feed(piece)
        visible.finish()
        took += time.perf_counter_ns() - began
    return took


def measure(rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """µs per token of the whole filter and of each stage, for each chunking."""
    catalog = load_catalog()
    brief = ChapterBrief(world=catalog.worlds["clockwork-harbor"], topic_name="Plants", number=3,
                         type=ChapterType.STORY)
    rules = ChildSafety(load_lexicon()).chapter_rules(brief)
    results = {}
    for label, chunking in CHUNKINGS.items():
        pieces = [split_chunks(text, **chunking) for text in story_replies()]
        tokens = sum(map(len, pieces))
        whole = min(_round(pieces, rules, None) for _ in range(rounds))
        best: dict[str, int] = {}
        for _ in range(rounds):
            spent: dict[str, int] = defaultdict(int)
            _round(pieces, rules, spent)
            best = {name: min(best.get(name, spent[name]), spent[name]) for name in STAGES}
        results[label] = {"tokens": tokens, "whole": whole / tokens / 1e3,
                          **{name: best[name] / tokens / 1e3 for name in STAGES}}
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["## The stream's text filters: CPU per token", "",
             "| chunking | tokens | whole (µs per token) | " + " | ".join(STAGES) + " |",
             "|---|---:|---:|" + "---:|" * len(STAGES)]
    for label, row in results.items():
        lines.append(f"| {label} | {row['tokens']:.0f} | {row['whole']:.1f} | "
                     + " | ".join(f"{row[name]:.1f}" for name in STAGES) + " |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, float]], path: Path) -> None:
    from benchmarks.report import plt

    fig, axis = plt.subplots(figsize=(8, 4))
    labels = list(results)
    bottom = [0.0] * len(labels)
    for name in STAGES:
        values = [results[label][name] for label in labels]
        axis.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.scatter(labels, [results[label]["whole"] for label in labels], color="black", zorder=3,
                 label="whole, unclocked")
    axis.set(ylabel="µs of CPU per model token", title="The stream's text filters, stage by stage")
    axis.legend(fontsize=8)
    axis.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
