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
