"""Reads the story worlds (worlds/*.yaml) and lesson banks (lessons/*.csv) into a Catalog.

Owns the content file formats and their rules: anything an author can get wrong fails loudly
at startup as a ContentError naming the file, the row or key path, and the field.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from itertools import zip_longest
from pathlib import Path
from typing import Any

import yaml

from service.domain.story import Catalog, LessonQuestion, LessonTopic, StoryWorld

CSV_HEADER = ("topic", "subtopic", "difficulty", "question",
              "correct_answer", "wrong_answer1", "wrong_answer2", "explanation")
DIFFICULTIES = frozenset({"easy", "medium", "hard"})
MIN_QUESTIONS_PER_TOPIC = 20
WORLD_TEXT_FIELDS = ("name", "description")
WORLD_LIST_FIELDS = ("settings", "themes", "moral_teachings", "plot_twists")
SENSES = ("visuals", "sounds", "smells")
# Keys end up in question ids and URLs, so they must be safe there without escaping.
_KEY_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class ContentError(Exception):
    """A content file breaks a rule; the message says where, precisely enough to fix it."""

    def __init__(self, file: str, problem: str, *, row: int | None = None, field: str | None = None):
        where = [file]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.file, self.row, self.field, self.problem = file, row, field, problem


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


def question_id(topic_key: str, question: str) -> str:
    # A hash of the text, not the row number, so reordering a CSV keeps saved progress valid.
    return f"{topic_key}:{hashlib.sha1(question.encode('utf-8')).hexdigest()[:10]}"


def _load_world(path: Path) -> StoryWorld:
    file, key = _file_and_key(path)
    try:
        data = yaml.safe_load(_read_text(path, file))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or exc
        raise ContentError(file, f"is not valid YAML{at}: {reason}") from exc
    if not isinstance(data, dict):
        raise ContentError(file, "must be a YAML mapping of world fields")
    known = {*WORLD_TEXT_FIELDS, *WORLD_LIST_FIELDS, "sensory_details"}
    _reject_unknown_keys(file, data, known, prefix="")
    text = {name: _text(file, name, data.get(name)) for name in WORLD_TEXT_FIELDS}
    lists = {name: _text_list(file, name, data.get(name)) for name in WORLD_LIST_FIELDS}
    senses = data.get("sensory_details")
    if not isinstance(senses, dict):
        raise ContentError(file, f"must be a mapping with {', '.join(SENSES)}", field="sensory_details")
    _reject_unknown_keys(file, senses, set(SENSES), prefix="sensory_details.")
    sensed = {name: _text_list(file, f"sensory_details.{name}", senses.get(name)) for name in SENSES}
    return StoryWorld(key=key, **text, **lists, **sensed)


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
        record = dict(zip(CSV_HEADER, (cell.strip() for cell in cells)))
        _check_row(file, line, record, topic=questions[0].topic if questions else record["topic"])
        normalized = " ".join(record["question"].casefold().split())
        if normalized in seen:
            raise ContentError(file, f"duplicate of the question on row {seen[normalized]}",
                               row=line, field="question")
        seen[normalized] = line
        questions.append(LessonQuestion(
            id=question_id(key, record["question"]), topic=record["topic"],
            subtopic=record["subtopic"], difficulty=record["difficulty"],
            question=record["question"], correct_answer=record["correct_answer"],
            wrong_answers=(record["wrong_answer1"], record["wrong_answer2"]),
            explanation=record["explanation"],
        ))
    if len(questions) < MIN_QUESTIONS_PER_TOPIC:
        raise ContentError(file, f"has {len(questions)} questions; a topic needs at least "
                                 f"{MIN_QUESTIONS_PER_TOPIC}", field="question")
    return LessonTopic(key=key, name=questions[0].topic, questions=tuple(questions))


def _check_row(file: str, line: int, record: dict[str, str], *, topic: str) -> None:
    for column in CSV_HEADER:
        if not record[column]:
            raise ContentError(file, "empty", row=line, field=column)
    if record["topic"] != topic:
        raise ContentError(file, f"must be {topic!r} like the first row, found {record['topic']!r}",
                           row=line, field="topic")
    if record["difficulty"] not in DIFFICULTIES:
        raise ContentError(file, f"must be one of easy, medium, hard, found {record['difficulty']!r}",
                           row=line, field="difficulty")
    first_seen: dict[str, str] = {}
    for column in ("correct_answer", "wrong_answer1", "wrong_answer2"):
        answer = record[column].casefold()
        if answer in first_seen:
            raise ContentError(file, f"same answer as {first_seen[answer]!r}", row=line, field=column)
        first_seen[answer] = column


def _text(file: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContentError(file, _missing_or("must be a non-empty string", value), field=field)
    return value.strip()


def _text_list(file: str, field: str, value: Any) -> tuple[str, ...]:
    # A bare string is rejected rather than wrapped: it is usually a list written without dashes.
    if not (isinstance(value, list) and value and all(isinstance(i, str) and i.strip() for i in value)):
        raise ContentError(file, _missing_or("must be a non-empty list of strings", value), field=field)
    return tuple(item.strip() for item in value)


def _missing_or(rule: str, value: Any) -> str:
    return f"missing; {rule}" if value is None else rule


def _reject_unknown_keys(file: str, data: dict, known: set[str], *, prefix: str) -> None:
    for name in data:
        if name not in known:
            raise ContentError(file, f"unknown field; expected one of {', '.join(sorted(known))}",
                               field=f"{prefix}{name}")


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
