"""The quality report plays real adventures against the configured model."""
from __future__ import annotations

from service.evaluation import evaluate
from service.quality import Played

# Enough story that no chapter is far too short (and asked to go on).
FILLER = ("The boats rocked gently beside the harbor wall. A fisherman mended his green net in the sun. "
          "Two children raced along the sand with a red kite. The smell of warm bread drifted from the bakery. "
          "Far away, the lighthouse blinked its slow yellow light. You counted the waves as they rolled in. "
          "A crab hurried sideways under a barnacled stone.")


async def test_when_one_adventure_is_evaluated_then_the_report_counts_its_ten_chapters(settings, scripted_model):
    scripted_model.script.choices_style = "missing"
    report = await evaluate(settings, adventures=1)
    rows = dict(report.rows())

    assert rows["chapters written"] == "10"
    assert rows["choices valid unaided"].startswith("0/")
    assert rows["choices format-valid unaided"].startswith("0/")
    assert rows["choices valid after repair call"].endswith("(100 %)")
    assert rows["lesson questions asked word for word in the story"] == "3/3 (100 %)"
    assert rows["chapters under 60 words"] == "0" and rows["repeated sentences shown"] == "0"
    # The scripted helper gives each chapter a title of its own (tests/test_summaries.py has
    # one that repeats a title).
    assert rows["summaries from the model"] == "10/10 (100 %)" and rows["distinct titles per adventure"] == "10/10"
    grade = float(rows["reading grade (Flesch–Kincaid), median (range)"].split()[0])
    assert 3 < grade < 12
    assert "| measure | value |" in report.markdown() and len(report.per_chapter()) == 2 + 10


async def test_when_the_model_writes_unfit_text_then_the_report_counts_what_was_dropped_per_adventure(
    settings, scripted_model
):
    scripted_model.script.reply_override = (
        "# The Harbor\n\nYou walk **slowly** along the docks. The captain drank a cold beer. "
        "LESSON TOPIC: Plants.\n\nMira waved from the pier and the gulls cried overhead. " + FILLER +
        "\n\n<CHOICES>\nChoice A: Wave back\nChoice B: Walk on\nChoice C: Call the gulls\n</CHOICES>")
    report = await evaluate(settings, adventures=1)
    [(adventure, unfit, echoes, answers, marks)] = report.screened()

    assert unfit == "alcohol 10" and echoes == 10 and answers == 0
    assert marks == 10 * 3  # a heading and two bold markers in each of the ten chapters
    assert f"| {adventure} | alcohol 10 | 10 | 0 | 30 |" in report.markdown()


class _Chapter:
    adventure_id, number, type, quality, first_token_seconds = "a", 1, "STORY", {}, None

    def __init__(self, text: str):
        self.text = text


def test_when_a_chapter_shows_a_sentence_twice_then_the_report_counts_the_repeat():
    once = "You walk to the end of the pier. The gulls cry."
    assert Played(_Chapter(f"{once} You walk to the end of the pier. Then you rest.")).repeated_sentences == 1
    assert Played(_Chapter(once)).repeated_sentences == 0


def test_when_a_chapter_opens_with_the_lesson_check_then_its_words_and_grade_are_the_storys():
    story = "You see a cat. The cat is on the mat. You pat the cat."
    played = Played(_Chapter("Lesson check: What is a photosynthetic autotroph? You answered it.\n\n" + story))
    assert played.words == len(story.split()) and played.grade < 3
