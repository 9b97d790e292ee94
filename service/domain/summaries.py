"""Reading what the helper model returns for summaries and characters. Small models
drift from the format, so parsing is lenient and an extract of the chapter stands in
when the reply holds nothing usable.
"""
from __future__ import annotations

from dataclasses import dataclass

import json_repair
import regex

from service.domain.choices import uncut
from service.domain.paragraphs import split_sentences

_TITLE = regex.compile(r"^\W*title\W*:\s*(.+)$", regex.I | regex.M)
_SUMMARY = regex.compile(r"summary\W*:\s*(.+)", regex.I | regex.S)
_NAME = regex.compile(r"^[\p{L}][\p{L}\p{M}' .-]{0,60}$")
# A short, good summary is a summary: two plain sentences of a small model are enough to
# tell a reader (and the next chapter's prompt) what happened.
MIN_SUMMARY_WORDS = 8
# An extract is whole sentences of the chapter, up to this many words.
EXTRACT_WORDS = 60
# "LESSON TOPIC:", "Title:": a label at a sentence's start is not story.
_LABELLED = regex.compile(r"^[\W_]*[\p{L}' ]{1,30}:\s")
_PLACE_OR_NAME = regex.compile(r"(?<=[a-z,;]\s+)((?:the\s+)?[A-Z][a-z]{2,}(?:[ -][A-Z][a-z]{2,})*)")


@dataclass(frozen=True)
class Cap:
    words: int
    chars: int


# What a helper reply may put on a page or into a prompt, by words and by characters: a
# 30,000-character title or a 200,000-character "word" is neither stored nor shown. No word
# of a children's story is longer than MAX_WORD_CHARS; a longer one is dropped as garbage.
MAX_WORD_CHARS = 30
TITLE = Cap(words=10, chars=80)
EXTRACT_TITLE = Cap(words=8, chars=80)
SUMMARY = Cap(words=110, chars=800)
CHARACTER_NAME = Cap(words=4, chars=60)
CHARACTER_DESCRIPTION = Cap(words=50, chars=300)


def capped(text: str, cap: Cap) -> str:
    """`text` within `cap`, over-long words dropped, cut at a word with "…" when it was longer."""
    words = [word for word in text.split() if len(word) <= MAX_WORD_CHARS]
    kept = words[:cap.words]
    while kept and len(" ".join(kept)) > cap.chars - 1:
        kept.pop()
    return " ".join(kept) + ("…" if len(kept) < len(words) else "")


def _clean(text: str) -> str:
    return " ".join(text.replace("*", "").replace("#", "").split()).strip(" \"'")


def extract_summary(chapter_text: str, number: int) -> tuple[str, str]:
    """A title and summary built from the chapter itself, always available: whole sentences
    of it (none cut, none that begins with a label), and a title that names the chapter."""
    sentences = [s for s in split_sentences(" ".join(chapter_text.split()))
                 if len(s.split()) >= 3 and not _LABELLED.match(s)]
    kept: list[str] = []
    for sentence in sentences:
        if kept and len(" ".join([*kept, sentence]).split()) > EXTRACT_WORDS:
            break
        kept.append(sentence)
    summary = " ".join(kept)
    if capped(summary, SUMMARY) != summary:  # one endless sentence: it must be cut after all
        summary = capped(summary, SUMMARY)
    names = [m.group(1) for m in _PLACE_OR_NAME.finditer(" ".join(kept or sentences))]
    title = capped(f"Chapter {number}: {names[0][:1].upper()}{names[0][1:]}" if names else f"Chapter {number}",
                   EXTRACT_TITLE)
    return title, summary or f"Chapter {number} of the adventure."


def parse_summary(reply: str) -> tuple[str, str] | None:
    """(title, summary) from a reply as JSON ({"title": ..., "summary": ...}) or like
    "Title: ...\\nSummary: ...", or None."""
    title, summary = _summary_fields(reply)
    # A title cut where a model's cap on its words fell ends at its last whole phrase.
    title = capped(uncut(_clean(title).rstrip(".")), TITLE) if title else ""
    summary = capped(_clean(summary), SUMMARY)
    if not title.strip("…") or len(summary.split()) < MIN_SUMMARY_WORDS:
        return None
    return title, summary


def _summary_fields(reply: str) -> tuple[str, str]:
    unfenced = reply.strip().removeprefix("```json").removeprefix("```").strip()
    if unfenced.startswith("{"):
        data = json_repair.loads(unfenced)
        if isinstance(data, dict):
            return str(data.get("title") or ""), str(data.get("summary") or "")
    title_match = _TITLE.search(reply)
    summary_match = _SUMMARY.search(reply)
    if summary_match:
        summary = summary_match.group(1)
    else:
        summary = " ".join(line for line in reply.splitlines() if line.strip() and not _TITLE.match(line))
    return (title_match.group(1) if title_match else ""), summary


def title_fits(title: str, chapter_text: str) -> bool:
    """Whether a title speaks of the chapter: its longer words (all but one of them) are words
    the chapter uses. A small model's title may otherwise be words it made up."""
    told = {word.casefold() for word in regex.findall(r"\w+", chapter_text)}
    # Word by word as the chapter is read: "Sailor's" is the chapter's "Sailor", and
    # "lantern-fish" its "lantern" and "fish".
    long_words = [word.casefold() for word in regex.findall(r"\w+", title) if len(word) >= 5]
    return sum(word not in told for word in long_words) <= (1 if len(long_words) > 2 else 0)


def same_title(title: str, others: list[str]) -> bool:
    """Whether a title repeats one of `others` (letter case and punctuation aside)."""
    def key(text: str) -> str:
        return " ".join(regex.sub(r"[^\w\s]", " ", text.casefold()).split())
    return key(title) in {key(other) for other in others}


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
        description = capped(_clean(str(item.get("description", ""))), CHARACTER_DESCRIPTION)
        if _NAME.match(name) and name == capped(name, CHARACTER_NAME) and description.strip("…"):
            found[name] = description
    return found
