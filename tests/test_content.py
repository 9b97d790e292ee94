"""The shipped content loads, and every broken content file fails with a message that says where."""
from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from service.content.loader import CSV_HEADER, ContentError, load_catalog
from service.domain.story import StoryWorld

WORLD_FILE = "worlds/test-world.yaml"
TOPIC_FILE = "lessons/test-topic.csv"


def valid_world() -> dict:
    return {
        "name": "Test Grove",
        "description": "A quiet grove used by the tests. Nothing bad happens here.",
        "settings": ["a clearing", "a brook", "a hollow log", "a hilltop"],
        "themes": ["kindness", "curiosity", "patience"],
        "moral_teachings": ["Share.", "Listen.", "Try again."],
        "plot_twists": ["The owl was the baker.", "The map was upside down.", "The storm was a dragon's sneeze."],
        "sensory_details": {
            "visuals": ["green light", "blue water", "red berries"],
            "sounds": ["birdsong", "wind", "a brook"],
            "smells": ["pine", "rain", "bread"],
        },
    }


def valid_rows(count: int = 20) -> list[list[str]]:
    return [
        ["Counting", "sums", "easy", f"What is {n} + 1?", str(n + 1), str(n + 2), str(n + 3),
         f"One more than {n} is {n + 1}, because counting up by one, {n + 1} comes next."]
        for n in range(count)
    ]


def write_content(root: Path, *, world: dict | str | None = None, rows: list[list[str]] | None = None,
                  header: list[str] | None = None) -> Path:
    (root / "worlds").mkdir(parents=True, exist_ok=True)
    (root / "lessons").mkdir(parents=True, exist_ok=True)
    world = valid_world() if world is None else world
    text = world if isinstance(world, str) else yaml.safe_dump(world, sort_keys=False)
    # surrogateescape: a test can write bytes that are not UTF-8 ("\udce9" is the byte 0xE9).
    (root / WORLD_FILE).write_text(text, encoding="utf-8", errors="surrogateescape")
    (root / TOPIC_FILE).write_text(csv_text(valid_rows() if rows is None else rows, header), encoding="utf-8")
    return root


def csv_text(rows: list[list[str]], header: list[str] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(CSV_HEADER) if header is None else header)
    writer.writerows(rows)
    return buffer.getvalue()


def with_cells(row_index: int, **values: str) -> list[list[str]]:
    rows = valid_rows()
    for column, value in values.items():
        rows[row_index][CSV_HEADER.index(column)] = value
    return rows


def without(field: str) -> dict:
    world = valid_world()
    del world[field]
    return world


def with_smells(value: object) -> dict:
    world = valid_world()
    world["sensory_details"]["smells"] = value
    return world


def with_senses(value: object) -> dict:
    return {**valid_world(), "sensory_details": value}


def misspelt(field: str, spelling: str) -> dict:
    world = without(field)
    world[spelling] = valid_world()[field]
    return world


def duplicated_question() -> list[list[str]]:
    rows = valid_rows()
    rows[8][CSV_HEADER.index("question")] = "  what is 2 + 1?  "  # data row 2, on line 4
    return rows


def with_extra_world(root: Path, file_name: str, name: str) -> Path:
    write_content(root)
    (root / "worlds" / file_name).write_text(yaml.safe_dump({**valid_world(), "name": name}), encoding="utf-8")
    return root


# Data row i sits on line i + 2 of the file: the header is line 1.
BROKEN_CONTENT: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "world missing a field": (
        lambda root: write_content(root, world=without("themes")),
        [WORLD_FILE, "field 'themes'", "non-empty list of strings"],
    ),
    "world with an empty name": (
        lambda root: write_content(root, world={**valid_world(), "name": "   "}),
        [WORLD_FILE, "field 'name'", "non-empty string"],
    ),
    "world list field written as a plain string": (
        lambda root: write_content(root, world={**valid_world(), "settings": "a clearing, a brook"}),
        [WORLD_FILE, "field 'settings'", "non-empty list of strings"],
    ),
    "world sensory list that is empty": (
        lambda root: write_content(root, world=with_smells([])),
        [WORLD_FILE, "field 'sensory_details.smells'", "non-empty list of strings"],
    ),
    "world sensory list holding a blank entry": (
        lambda root: write_content(root, world=with_smells(["pine", ""])),
        [WORLD_FILE, "field 'sensory_details.smells'"],
    ),
    "world with a misspelt field": (
        lambda root: write_content(root, world={**valid_world(), "setings": ["a"]}),
        [WORLD_FILE, "field 'setings'", "unknown field"],
    ),
    "world field left blank (YAML null)": (
        lambda root: write_content(root, world="description: A grove.\nname:\n"),
        [WORLD_FILE, "field 'name'", "missing; must be a non-empty string"],
    ),
    "world name written as a number": (
        lambda root: write_content(root, world={**valid_world(), "name": 42}),
        [WORLD_FILE, "field 'name'", "non-empty string"],
    ),
    "world list holding numbers": (
        lambda root: write_content(root, world={**valid_world(), "themes": [1, 2, 3]}),
        [WORLD_FILE, "field 'themes'", "non-empty list of strings"],
    ),
    "world without sensory details": (
        lambda root: write_content(root, world=without("sensory_details")),
        [WORLD_FILE, "field 'sensory_details'", "mapping with visuals, sounds, smells"],
    ),
    "world sensory details written as a list": (
        lambda root: write_content(root, world=with_senses(["green light", "birdsong"])),
        [WORLD_FILE, "field 'sensory_details'", "mapping with visuals, sounds, smells"],
    ),
    "world sensory details with an unknown sense": (
        lambda root: write_content(root, world=with_senses({**valid_world()["sensory_details"], "tastes": ["salt"]})),
        [WORLD_FILE, "field 'sensory_details.tastes'", "unknown field; expected one of smells, sounds, visuals"],
    ),
    "world whose only spelling of a field is wrong": (
        lambda root: write_content(root, world=misspelt("themes", "themse")),
        [WORLD_FILE, "field 'themse'", "unknown field"],
    ),
    "world file that is empty": (
        lambda root: write_content(root, world=""),
        [WORLD_FILE, "mapping with name, description"],
    ),
    "world file that is not UTF-8": (
        lambda root: write_content(root, world="name: Caf\udce9\n"),
        [WORLD_FILE, "not UTF-8"],
    ),
    "world YAML that does not parse": (
        lambda root: write_content(root, world="name: [Test Grove\ndescription: : :\n"),
        [WORLD_FILE, "not valid YAML"],
    ),
    "world YAML that is not a mapping": (
        lambda root: write_content(root, world="- just\n- a list\n"),
        [WORLD_FILE, "mapping"],
    ),
    "two worlds sharing a name": (
        lambda root: with_extra_world(root, "other-world.yaml", "test grove"),
        [WORLD_FILE, "field 'name'", "worlds/other-world.yaml"],
    ),
    "world file name that cannot be a key": (
        lambda root: with_extra_world(root, "Bad_Name.yaml", "Somewhere Else"),
        ["worlds/Bad_Name.yaml", "lowercase"],
    ),
    "csv row lacking the correct answer": (
        lambda root: write_content(root, rows=with_cells(5, correct_answer="")),
        [TOPIC_FILE, "row 7", "field 'correct_answer'", "empty"],
    ),
    "csv row with a blank explanation": (
        lambda root: write_content(root, rows=with_cells(0, explanation="   ")),
        [TOPIC_FILE, "row 2", "field 'explanation'", "empty"],
    ),
    "csv row whose wrong answer repeats the correct one": (
        lambda root: write_content(root, rows=with_cells(3, wrong_answer2=" 4 ")),
        [TOPIC_FILE, "row 5", "field 'wrong_answer2'", "same answer as 'correct_answer'"],
    ),
    "csv row whose wrong answers match ignoring case": (
        lambda root: write_content(root, rows=with_cells(2, wrong_answer1="four", wrong_answer2="  FOUR ")),
        [TOPIC_FILE, "row 4", "field 'wrong_answer2'", "same answer as 'wrong_answer1'"],
    ),
    "csv row with an unknown difficulty": (
        lambda root: write_content(root, rows=with_cells(9, difficulty="tricky")),
        [TOPIC_FILE, "row 11", "field 'difficulty'", "easy, medium, hard"],
    ),
    "csv row with an empty difficulty": (
        lambda root: write_content(root, rows=with_cells(9, difficulty=" ")),
        [TOPIC_FILE, "row 11", "field 'difficulty'", "empty"],
    ),
    "csv row whose first wrong answer repeats the correct one": (
        lambda root: write_content(root, rows=with_cells(1, wrong_answer1="2")),
        [TOPIC_FILE, "row 3", "field 'wrong_answer1'", "same answer as 'correct_answer'"],
    ),
    "csv with a wrong header": (
        lambda root: write_content(root, header=[*CSV_HEADER[:4], "answer", *CSV_HEADER[5:]]),
        [TOPIC_FILE, "row 1", "field 'correct_answer'", "header must be exactly"],
    ),
    "csv with a missing header column": (
        lambda root: write_content(root, header=list(CSV_HEADER[:-1])),
        [TOPIC_FILE, "row 1", "field 'explanation'"],
    ),
    "csv with a repeated question": (
        lambda root: write_content(root, rows=duplicated_question()),
        [TOPIC_FILE, "row 10", "field 'question'", "row 4"],
    ),
    "csv row naming a different topic": (
        lambda root: write_content(root, rows=with_cells(4, topic="Spelling")),
        [TOPIC_FILE, "row 6", "field 'topic'", "'Counting'"],
    ),
    "csv row with too few columns": (
        lambda root: write_content(root, rows=[*valid_rows()[:12], ["Counting", "sums", "easy"]]),
        [TOPIC_FILE, "row 14", "expected 8 columns, found 3"],
    ),
    "csv with too few questions": (
        lambda root: write_content(root, rows=valid_rows(19)),
        [TOPIC_FILE, "field 'question'", "has 19 questions", "at least 20"],
    ),
}


@pytest.mark.parametrize("build, expected_fragments", BROKEN_CONTENT.values(), ids=BROKEN_CONTENT.keys())
def test_when_a_content_file_is_broken_then_the_error_names_file_row_and_field(
    tmp_path: Path, build: Callable[[Path], Path], expected_fragments: list[str]
) -> None:
    with pytest.raises(ContentError) as caught:
        load_catalog(build(tmp_path))
    message = str(caught.value)
    for fragment in expected_fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


def test_the_shipped_catalog_has_at_least_six_worlds_and_six_topics_of_twenty_questions() -> None:
    catalog = load_catalog()
    assert len(catalog.worlds) >= 6
    assert len(catalog.topics) >= 6
    for topic in catalog.topics.values():
        assert len(topic.questions) >= 20, topic.key


def test_question_ids_are_unique_across_the_shipped_catalog() -> None:
    ids = [q.id for topic in load_catalog().topics.values() for q in topic.questions]
    assert len(ids) == len(set(ids))


def test_shipped_questions_have_three_distinct_answers_and_a_known_difficulty() -> None:
    for topic in load_catalog().topics.values():
        for question in topic.questions:
            assert len({answer.casefold() for answer in question.answers}) == 3, question.id
            assert question.difficulty in {"easy", "medium", "hard"}


def test_shipped_worlds_are_complete_and_keyed_by_their_file_stem() -> None:
    root = Path(__file__).parents[1] / "service" / "content" / "worlds"
    catalog = load_catalog()
    assert set(catalog.worlds) == {path.stem for path in root.glob("*.yaml")}
    for key, world in catalog.worlds.items():
        assert world.key == key
        assert len(world.settings) >= 4 and len(world.themes) >= 3
        assert len(world.moral_teachings) >= 3 and len(world.plot_twists) >= 3
        assert min(len(world.visuals), len(world.sounds), len(world.smells)) >= 3


def test_a_question_id_is_the_topic_key_and_a_hash_of_the_question_text(tmp_path: Path) -> None:
    topic = load_catalog(write_content(tmp_path)).topics["test-topic"]
    first = topic.questions[0]
    assert first.id == "test-topic:" + hashlib.sha1(b"What is 0 + 1?").hexdigest()[:10]


def test_question_ids_stay_the_same_when_rows_are_reordered(tmp_path: Path) -> None:
    forward = load_catalog(write_content(tmp_path / "a")).topics["test-topic"]
    backward = load_catalog(write_content(tmp_path / "b", rows=valid_rows()[::-1])).topics["test-topic"]
    assert {q.question: q.id for q in forward.questions} == {q.question: q.id for q in backward.questions}


def test_a_loaded_world_and_topic_carry_every_field_from_their_files(tmp_path: Path) -> None:
    catalog = load_catalog(write_content(tmp_path))
    assert catalog.worlds == {"test-world": StoryWorld(
        key="test-world", name="Test Grove",
        description="A quiet grove used by the tests. Nothing bad happens here.",
        settings=("a clearing", "a brook", "a hollow log", "a hilltop"),
        themes=("kindness", "curiosity", "patience"),
        moral_teachings=("Share.", "Listen.", "Try again."),
        plot_twists=("The owl was the baker.", "The map was upside down.", "The storm was a dragon's sneeze."),
        visuals=("green light", "blue water", "red berries"),
        sounds=("birdsong", "wind", "a brook"),
        smells=("pine", "rain", "bread"),
    )}
    topic = catalog.topics["test-topic"]
    assert (topic.key, topic.name, len(topic.questions)) == ("test-topic", "Counting", 20)
    question = topic.questions[3]
    assert (question.topic, question.subtopic, question.difficulty) == ("Counting", "sums", "easy")
    assert question.answers == ("4", "5", "6")


def test_worlds_and_topics_are_ordered_by_name_not_by_file_name(tmp_path: Path) -> None:
    root = write_content(tmp_path)
    (root / "worlds" / "a-world.yaml").write_text(
        yaml.safe_dump({**valid_world(), "name": "Zebra Plains"}), encoding="utf-8")
    (root / "lessons" / "z-topic.csv").write_text(
        csv_text([["Animals", *row[1:]] for row in valid_rows()]), encoding="utf-8")
    catalog = load_catalog(root)
    assert list(catalog.worlds) == ["test-world", "a-world"]
    assert list(catalog.topics) == ["z-topic", "test-topic"]


def test_when_a_quoted_field_spans_lines_then_later_rows_report_their_real_line(tmp_path: Path) -> None:
    rows = valid_rows()
    rows[0][CSV_HEADER.index("explanation")] = "First line\nsecond line\nthird line"
    rows[2][CSV_HEADER.index("difficulty")] = "impossible"
    with pytest.raises(ContentError, match=r"row 6, field 'difficulty'"):
        load_catalog(write_content(tmp_path, rows=rows))


def test_when_there_are_no_worlds_then_loading_fails(tmp_path: Path) -> None:
    root = write_content(tmp_path)
    (root / WORLD_FILE).unlink()
    with pytest.raises(ContentError, match="worlds/"):
        load_catalog(root)


def test_when_there_are_no_topics_then_loading_fails(tmp_path: Path) -> None:
    root = write_content(tmp_path)
    (root / TOPIC_FILE).unlink()
    with pytest.raises(ContentError, match="lessons/"):
        load_catalog(root)


def test_a_content_error_keeps_its_location_for_callers(tmp_path: Path) -> None:
    with pytest.raises(ContentError) as caught:
        load_catalog(write_content(tmp_path, rows=with_cells(5, correct_answer="")))
    assert (caught.value.file, caught.value.row, caught.value.field) == (TOPIC_FILE, 7, "correct_answer")
    assert str(caught.value) == "lessons/test-topic.csv, row 7, field 'correct_answer': empty"


def test_when_a_lesson_bank_was_saved_with_a_byte_order_mark_then_its_header_is_still_read(tmp_path: Path) -> None:
    root = write_content(tmp_path)
    (root / TOPIC_FILE).write_text("\ufeff" + csv_text(valid_rows()), encoding="utf-8")
    assert load_catalog(root).topics["test-topic"].name == "Counting"
