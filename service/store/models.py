"""The tables. Alembic's migrations in `migrations/` create them; these classes map them.

Chapters store only their finished, clean text and the last event id of their latest
attempt: the token stream lives in memory. States are the enums of `domain.lifecycle`.
"""
from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.domain.chapter_events import FIRST_LAST_ID
from service.domain.lifecycle import ChapterState, JobState


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _state(states: type[StrEnum]) -> Enum:
    """A state column: the enum's values in a plain VARCHAR(16), read back as its members."""
    return Enum(states, native_enum=False, create_constraint=False, length=16,
                values_callable=lambda members: [m.value for m in members])


class Base(DeclarativeBase):
    pass


class Adventure(Base):
    __tablename__ = "adventures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_hash: Mapped[str] = mapped_column(String(64), index=True)
    world_key: Mapped[str] = mapped_column(String(64))
    topic_key: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    plan: Mapped[list[str]] = mapped_column(JSON)
    question_ids: Mapped[list[str]] = mapped_column(JSON)
    agency: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Chapter(Base):
    __tablename__ = "chapters"
    __table_args__ = (UniqueConstraint("adventure_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adventure_id: Mapped[str] = mapped_column(ForeignKey("adventures.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    state: Mapped[ChapterState] = mapped_column(_state(ChapterState), default=ChapterState.PENDING)
    text: Mapped[str] = mapped_column(Text, default="")
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    question_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # The id of the last event of the latest attempt's stream (domain.chapter_events.EventIds).
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=FIRST_LAST_ID)
    quality: Mapped[dict] = mapped_column(JSON, default=dict)
    first_token_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("adventure_id", "chapter_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adventure_id: Mapped[str] = mapped_column(ForeignKey("adventures.id", ondelete="CASCADE"), index=True)
    chapter_number: Mapped[int] = mapped_column(Integer)
    choice: Mapped[str] = mapped_column(Text)
    question_id: Mapped[str | None] = mapped_column(String(64), default=None)
    correct: Mapped[bool | None] = mapped_column(Boolean, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Summary(Base):
    __tablename__ = "summaries"
    __table_args__ = (UniqueConstraint("adventure_id", "chapter_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adventure_id: Mapped[str] = mapped_column(ForeignKey("adventures.id", ondelete="CASCADE"), index=True)
    chapter_number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Character(Base):
    __tablename__ = "characters"
    __table_args__ = (UniqueConstraint("adventure_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adventure_id: Mapped[str] = mapped_column(ForeignKey("adventures.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Picture(Base):
    """A picture the image model drew, with the words it was drawn from and its alt text."""

    __tablename__ = "pictures"
    __table_args__ = (UniqueConstraint("adventure_id", "chapter_number", "option"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adventure_id: Mapped[str] = mapped_column(ForeignKey("adventures.id", ondelete="CASCADE"), index=True)
    chapter_number: Mapped[int] = mapped_column(Integer)
    # 0: the chapter's own scene; 1-3: the picture beside that choice of the first chapter.
    option: Mapped[int] = mapped_column(Integer, default=0)
    # sha256 of `data`, in hex: the picture's address, so a browser may keep it for good.
    digest: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    alt: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    # Loaded only when the picture itself is asked for, never with the rest of the row.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("kind", "adventure_id", "chapter_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    adventure_id: Mapped[str] = mapped_column(ForeignKey("adventures.id", ondelete="CASCADE"), index=True)
    chapter_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[JobState] = mapped_column(_state(JobState), default=JobState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The process running the job, and until when it is that process's (renewed while it runs).
    claimed_by: Mapped[str | None] = mapped_column(String(36), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ServerSecret(Base):
    """A key the server made for itself (e.g. the owner cookie's), shared by its processes."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
