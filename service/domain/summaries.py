"""Reading what the helper model returns for summaries and characters. Small models
drift from the format, so parsing is lenient and an extract of the chapter stands in
when the reply holds nothing usable.
"""
from __future__ import annotations

import json_repair
import regex

_TITLE = regex.compile(r"^\W*title\W*:\s*(.+)$", regex.I | regex.M)
_SUMMARY = regex.compile(r"summary\W*:\s*(.+)", regex.I | regex.S)
_SENTENCE_END = regex.compile(r"(?<=[.!?][\"”’']?)\s+")
_NAME = regex.compile(r"^[\p{L}][\p{L}\p{M}' .-]{0,60}$")
MIN_SUMMARY_WORDS = 20
MAX_SUMMARY_WORDS = 110


def _clean(text: str) -> str:
    return " ".join(text.replace("*", "").replace("#", "").split()).strip(" \"'")


def _words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit]) + ("…" if len(words) > limit else "")


def extract_summary(chapter_text: str, number: int) -> tuple[str, str]:
    """A title and summary built from the chapter itself: always available."""
    sentences = [s for s in _SENTENCE_END.split(" ".join(chapter_text.split())) if s]
    summary = ""
    for sentence in sentences:
        if len(summary.split()) >= 70:
            break
        summary = f"{summary} {sentence}".strip()
    first = sentences[0] if sentences else f"Chapter {number}"
    return _words(_clean(first).rstrip(".!?"), 8), _words(summary or first, MAX_SUMMARY_WORDS)


def parse_summary(reply: str) -> tuple[str, str] | None:
    """(title, summary) from a reply like "Title: ...\\nSummary: ...", or None."""
    title_match = _TITLE.search(reply)
    summary_match = _SUMMARY.search(reply)
    if summary_match:
        summary = _clean(summary_match.group(1))
    else:
        lines = [line for line in reply.splitlines() if line.strip() and not _TITLE.match(line)]
        summary = _clean(" ".join(lines))
    title = _clean(title_match.group(1)) if title_match else ""
    if not title or len(summary.split()) < MIN_SUMMARY_WORDS:
        return None
    return _words(title.rstrip("."), 10), _words(summary, MAX_SUMMARY_WORDS)


def parse_characters(reply: str) -> dict[str, str]:
    """{name: description} from a JSON array, even inside fences, with stray text or bad quoting."""
    data = json_repair.loads(reply)
    if isinstance(data, dict):
        data = data.get("characters", [data])
    found: dict[str, str] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        name = _clean(str(item.get("name", "")))
        description = _clean(str(item.get("description", "")))
        if _NAME.match(name) and description:
            found[name] = description[:300]
    return found
