"""Reads the story worlds (worlds/*.yaml) and lesson banks (lessons/*.csv) into a Catalog.

Owns the content file formats and the rules across a file or between files (keys, headers,
one topic per bank, no question twice); the rules of one world or one row are the models of
service/content/schema.py. Anything an author can get wrong fails loudly at startup as a
ContentError naming the file, the row or key path, and the field.
"""
from __future__ import annotations

import csv
import io
import re
from itertools import zip_longest
from pathlib import Path
from typing import Any

import yaml

from service.content.schema import ContentError, LessonRow, WorldFile, validated
from service.domain.story import Catalog, LessonQuestion, LessonTopic, StoryWorld

CSV_HEADER = tuple(LessonRow.model_fields)
MIN_QUESTIONS_PER_TOPIC = 20
# Keys end up in question ids and URLs, so they must be safe there without escaping.
_KEY_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def load_catalog(content_dir: Path | None = None) -> Catalog:
    root = Path(content_dir) if content_dir is not None else Path(__file__).parent
    worlds = [_load_world(path) for path in sorted((root / "worlds").glob("*.yaml"))]
    topics = [_load_topic(path) for path in sorted((root / "lessons").glob("*.csv"))]
    if not worlds:
        raise ContentError("worlds/", "no story world files (*.yaml) found")
    if not topics:
        raise ContentError("lessons/", "no lesson topic files (*.csv) found")
    _reject_duplicate_names("worlds/{}.yaml", worlds)
    _reject_duplicate_names("lessons/{}.csv", topics)
    return Catalog(worlds=_by_name(worlds), topics=_by_name(topics))


def _load_world(path: Path) -> StoryWorld:
    file, key = _file_and_key(path)
    try:
        data = yaml.safe_load(_read_text(path, file))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or exc
        raise ContentError(file, f"is not valid YAML{at}: {reason}") from exc
    return validated(WorldFile, data, file).world(key)


def _load_topic(path: Path) -> LessonTopic:
    file, key = _file_and_key(path)
    # utf-8-sig because spreadsheet programs often save CSVs with a byte-order mark.
    rows = csv.reader(io.StringIO(_read_text(path, file, encoding="utf-8-sig"), newline=""))
    try:
        return _parse_topic(file, key, rows)
    except csv.Error as exc:
        raise ContentError(file, f"is not valid CSV: {exc}", row=rows.line_num) from exc


def _parse_topic(file: str, key: str, rows: Any) -> LessonTopic:
    header = next(rows, [])
    if tuple(header) != CSV_HEADER:
        wanted, found = next((w, f) for w, f in zip_longest(CSV_HEADER, header) if w != f)
        found_text = "missing" if found is None else f"found {found!r}"
        raise ContentError(file, f"header must be exactly {','.join(CSV_HEADER)} ({found_text})",
                           row=1, field=wanted or found)
    questions: list[LessonQuestion] = []
    seen: dict[str, int] = {}
    next_line = rows.line_num + 1
    for cells in rows:
        # line_num counts physical lines, so a quoted multi-line field still reports where it starts.
        line, next_line = next_line, rows.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(CSV_HEADER):
            raise ContentError(file, f"expected {len(CSV_HEADER)} columns, found {len(cells)}", row=line)
        row = validated(LessonRow, dict(zip(CSV_HEADER, cells, strict=True)), file, row=line)
        if questions and row.topic != questions[0].topic:
            raise ContentError(file, f"must be {questions[0].topic!r} like the first row, found {row.topic!r}",
                               row=line, field="topic")
        normalized = " ".join(row.question.casefold().split())
        if normalized in seen:
            raise ContentError(file, f"duplicate of the question on row {seen[normalized]}",
                               row=line, field="question")
        seen[normalized] = line
        questions.append(row.lesson_question(key))
    if len(questions) < MIN_QUESTIONS_PER_TOPIC:
        raise ContentError(file, f"has {len(questions)} questions; a topic needs at least "
                                 f"{MIN_QUESTIONS_PER_TOPIC}", field="question")
    return LessonTopic(key=key, name=questions[0].topic, questions=tuple(questions))


def _reject_duplicate_names(file_pattern: str, items: list[StoryWorld] | list[LessonTopic]) -> None:
    owners: dict[str, str] = {}
    for item in items:
        folded = item.name.casefold()
        if folded in owners:
            raise ContentError(file_pattern.format(item.key), f"{item.name!r} is also the name in "
                               f"{file_pattern.format(owners[folded])}", field="name")
        owners[folded] = item.key


def _by_name(items: list[Any]) -> dict[str, Any]:
    return {item.key: item for item in sorted(items, key=lambda item: (item.name.casefold(), item.key))}


def _file_and_key(path: Path) -> tuple[str, str]:
    file = f"{path.parent.name}/{path.name}"
    if not _KEY_PATTERN.fullmatch(path.stem):
        raise ContentError(file, "file name must be lowercase letters and digits joined by dashes")
    return file, path.stem


def _read_text(path: Path, file: str, encoding: str = "utf-8") -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ContentError(file, f"is not UTF-8 text: {exc.reason}") from exc
