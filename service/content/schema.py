"""The rules of the content files as pydantic models: a story world's YAML (WorldFile) and
one row of a lesson bank's CSV (LessonRow), each making the domain's dataclass, and the one
translation of their errors into a ContentError that names the file, row and field.
"""
from __future__ import annotations

import hashlib
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.functional_validators import AfterValidator, WrapValidator
from pydantic_core import PydanticCustomError

from service.domain.story import LessonQuestion, StoryWorld

DIFFICULTIES = ("easy", "medium", "hard")
ANSWER_COLUMNS = ("correct_answer", "wrong_answer1", "wrong_answer2")
Model = TypeVar("Model", bound=BaseModel)


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


def _rule(rule: str) -> WrapValidator:
    """Every failure of the wrapped type reads as the one rule an author has to follow:
    pydantic's own words name Python types and item indexes, not what to write in the file."""
    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if value is None:  # left out, or a YAML key with nothing after it
            raise PydanticCustomError("missing", f"missing; {rule}")
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("content_rule", rule) from None
    return WrapValidator(check)


# strict: a number or a date in YAML is not silently turned into text.
Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1),
                 _rule("must be a non-empty string")]
# A bare string is rejected rather than wrapped: it is usually a list written without dashes.
TextList = Annotated[tuple[Text, ...], Field(min_length=1), _rule("must be a non-empty list of strings")]
Cell = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), _rule("empty")]


def _known_difficulty(value: str) -> str:
    if value not in DIFFICULTIES:
        raise PydanticCustomError("difficulty", "must be one of {allowed}, found {found}",
                                  {"allowed": ", ".join(DIFFICULTIES), "found": repr(value)})
    return value


class _ContentModel(BaseModel):
    # Fields default to None and are validated all the same, so a missing one is reported
    # with the rule it has to follow (by _rule), like one present but empty.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SensoryDetails(_ContentModel):
    visuals: TextList = None
    sounds: TextList = None
    smells: TextList = None


class WorldFile(_ContentModel):
    name: Text = None
    description: Text = None
    settings: TextList = None
    themes: TextList = None
    moral_teachings: TextList = None
    plot_twists: TextList = None
    sensory_details: SensoryDetails = None

    def world(self, key: str) -> StoryWorld:
        return StoryWorld(key=key, **self.model_dump(exclude={"sensory_details"}),
                          **self.sensory_details.model_dump())


class LessonRow(_ContentModel):
    """One question of a lesson bank; the fields are the CSV's columns, in order."""

    topic: Cell
    subtopic: Cell
    difficulty: Annotated[Cell, AfterValidator(_known_difficulty)]
    question: Cell
    correct_answer: Cell
    wrong_answer1: Cell
    wrong_answer2: Cell
    explanation: Cell

    @field_validator("wrong_answer1", "wrong_answer2")
    @classmethod
    def _answers_differ(cls, answer: str, info: ValidationInfo) -> str:
        # Fields are validated in order, so info.data holds the valid answers before this one.
        for earlier in ANSWER_COLUMNS[:ANSWER_COLUMNS.index(info.field_name)]:
            if earlier in info.data and info.data[earlier].casefold() == answer.casefold():
                raise PydanticCustomError("same_answer", "same answer as {earlier}", {"earlier": repr(earlier)})
        return answer

    def lesson_question(self, topic_key: str) -> LessonQuestion:
        return LessonQuestion(
            id=question_id(topic_key, self.question), topic=self.topic, subtopic=self.subtopic,
            difficulty=self.difficulty, question=self.question, correct_answer=self.correct_answer,
            wrong_answers=(self.wrong_answer1, self.wrong_answer2), explanation=self.explanation,
        )


def question_id(topic_key: str, question: str) -> str:
    # A hash of the text, not the row number, so reordering a CSV keeps saved progress valid.
    return f"{topic_key}:{hashlib.sha1(question.encode('utf-8')).hexdigest()[:10]}"


def validated(model: type[Model], data: Any, file: str, *, row: int | None = None) -> Model:
    """`data` as a `model`, or a ContentError naming its first problem (an unknown field
    first: a misspelt field is also a missing one, and its spelling is the thing to fix)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    where = error["loc"]
    if error["type"] == "extra_forbidden":
        known = _model_at(model, where[:-1]).model_fields
        problem = f"unknown field; expected one of {', '.join(sorted(known))}"
    elif error["type"] == "model_type":
        problem = f"must be a mapping with {', '.join(_model_at(model, where).model_fields)}"
    else:
        problem = error["msg"]
    raise ContentError(file, problem, row=row, field=".".join(map(str, where)) or None)


def _model_at(model: type[BaseModel], path: tuple[int | str, ...]) -> type[BaseModel]:
    for name in path:
        model = model.model_fields[name].annotation
    return model
