"""Every lifecycle the service goes through, each as one enum: a chapter's states, a deferred
job's states, the hand-off between a move and the chapter it starts, and the names of the
events a chapter's stream sends (the outside contract's names, spelled once here).
"""
from __future__ import annotations

from enum import StrEnum


class ChapterState(StrEnum):
    """pending -> writing -> complete | failed; writing becomes interrupted when the process
    writing it stops. failed and interrupted go back to writing when the player retries."""

    PENDING = "pending"
    WRITING = "writing"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


# States a chapter can only leave through a retry.
UNFINISHED = frozenset({ChapterState.FAILED, ChapterState.INTERRUPTED})
# States in which a chapter is still to be written (by a generation, started when missing).
TO_BE_WRITTEN = frozenset({ChapterState.PENDING, ChapterState.WRITING})


class JobState(StrEnum):
    """pending -> running -> done | failed; running is pending again after a stop, and a failed
    attempt that may be retried is pending with a later `run_after`."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class HandOffState(StrEnum):
    """A chapter started by a move: the model is asked at once (asking -> asked) while the move
    stores the chapter's row; then the move either has stored it or calls the chapter off."""

    ASKING = "asking"
    ASKED = "asked"
    STORED = "stored"
    CALLED_OFF = "called-off"


class StreamEvent(StrEnum):
    """The events of a chapter's stream, in the contract's order: `chunk`* then
    `replace-content`, `choices`, `close`; or `chapter-error` then `close`."""

    CHUNK = "chunk"
    REPLACE_CONTENT = "replace-content"
    CHOICES = "choices"
    CHAPTER_ERROR = "chapter-error"
    CLOSE = "close"
