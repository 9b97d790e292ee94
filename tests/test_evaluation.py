"""The quality report plays real adventures against the configured model."""
from __future__ import annotations

from service.evaluation import evaluate


async def test_when_one_adventure_is_evaluated_then_the_report_counts_its_ten_chapters(settings, scripted_model):
    scripted_model.script.choices_style = "missing"
    report = await evaluate(settings, adventures=1)
    rows = dict(report.rows())

    assert rows["chapters written"] == "10"
    assert rows["choices valid unaided"].startswith("0/")
    assert rows["choices valid after repair call"].endswith("(100 %)")
    assert rows["lesson questions asked word for word in the story"] == "3/3 (100 %)"
    assert "| measure | value |" in report.markdown()


async def test_when_the_model_writes_unfit_text_then_the_report_counts_what_was_dropped_per_adventure(
    settings, scripted_model
):
    scripted_model.script.reply_override = (
        "# The Harbor\n\nYou walk **slowly** along the docks. The captain drank a cold beer. "
        "LESSON TOPIC: Plants.\n\nMira waved from the pier and the gulls cried overhead."
        "\n\n<CHOICES>\nChoice A: Wave back\nChoice B: Walk on\nChoice C: Call the gulls\n</CHOICES>")
    report = await evaluate(settings, adventures=1)
    [(adventure, unfit, echoes, answers, marks)] = report.screened()

    assert unfit == "alcohol 10" and echoes == 10 and answers == 0
    assert marks == 10 * 3  # a heading and two bold markers in each of the ten chapters
    assert f"| {adventure} | alcohol 10 | 10 | 0 | 30 |" in report.markdown()
