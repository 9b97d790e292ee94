"""Adventure seeds for tests: with ADVENTURE_SEED set, every adventure draws what the
game's own `draw` gives for that seed, so a test that needs a chapter of one type picks the
seed that gives it instead of playing until one comes."""
from __future__ import annotations

import itertools
from functools import cache

from service.chapters.game import draw
from service.content.loader import load_catalog
from service.domain.story import ChapterType


@cache
def seed_with(topic: str, chapter: int, kind: ChapterType) -> int:
    """The smallest seed whose adventure on `topic` has a `kind` chapter at `chapter`."""
    lessons = load_catalog().topics[topic]
    return next(seed for seed in itertools.count() if draw(seed, lessons)[1][chapter - 1] is kind)
