"""The durable job queue: jobs are rows, claimed by flipping their state, so a job
survives a crash and is picked up again when the server starts. Claims are fair: jobs of
adventures a player is playing (one with a choice made) come first, and among those, and
then among the rest, the adventure served longest ago goes next (round-robin), so a flood
of new adventures cannot starve a real player's summaries.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from service.domain.lifecycle import JobState
from service.store.adventures import ResultWrite
from service.store.db import Sessions
from service.store.models import Answer, Job, utcnow

# How many due jobs one claim looks at; jobs of chapters still streaming are passed over.
CLAIM_WINDOW = 20
_Served = aliased(Job)
# When a job of the same adventure last started (NULL: never): the longest-unserved goes next.
_LAST_SERVED = (select(func.max(_Served.started_at)).where(_Served.adventure_id == Job.adventure_id)
                .correlate(Job).scalar_subquery())
_PLAYED = case((exists().where(Answer.adventure_id == Job.adventure_id), 0), else_=1)


class JobQueue:
    def __init__(self, sessions: Sessions):
        self.sessions = sessions

    async def recover(self) -> int:
        """At start-up: jobs a stopped process was running are pending again."""
        return await self.sessions.write(lambda session: session.execute(
            update(Job).where(Job.state == JobState.RUNNING).values(state=JobState.PENDING)
        ).rowcount or 0)

    async def claim(self, skip: set[tuple[str, int]] = frozenset(), kinds: Collection[str] | None = None,
                    while_streaming: Collection[str] = ()) -> Job | None:
        """Take the fairest due pending job (see above; of `kinds`, if given), unless its
        chapter is in `skip` and its kind is not one of those that may run `while_streaming`."""
        query = select(Job.id, Job.kind, Job.adventure_id, Job.chapter_number).where(
            Job.state == JobState.PENDING, Job.run_after <= utcnow())
        if kinds is not None:
            query = query.where(Job.kind.in_(sorted(kinds)))
        query = query.order_by(_PLAYED, _LAST_SERVED.asc().nulls_first(), Job.id).limit(CLAIM_WINDOW)

        def due(session: Session) -> list[int]:
            return [job_id for job_id, kind, adventure_id, number in session.execute(query)
                    if kind in while_streaming or (adventure_id, number) not in skip]

        # Finding candidates is a read: an idle queue never takes the write lock.
        candidates = await self.sessions.read(due)
        if not candidates:
            return None
        return await self.sessions.write(lambda session: _claim_first(session, candidates))

    async def done(self, job_id: int, result: ResultWrite | None = None) -> None:
        """The job's result and its `done` are stored together: a crash leaves neither."""
        def finish(session: Session) -> None:
            if result is not None:
                result(session)
            _set(session, job_id, state=JobState.DONE, finished_at=utcnow(), last_error=None)

        await self.sessions.write(finish)

    async def failed(self, job_id: int, error: str) -> None:
        """The job's last attempt failed: it stays failed until someone retries it."""
        await self._set(job_id, state=JobState.FAILED, finished_at=utcnow(), last_error=error)

    async def retry_later(self, job_id: int, error: str, retry_at: datetime) -> None:
        """An attempt failed and the job has attempts left: pending again from `retry_at`."""
        await self._set(job_id, state=JobState.PENDING, run_after=retry_at, last_error=error)

    async def set_back(self, job_id: int) -> None:
        """Pending again at once; an attempt that was set back, not failed, does not count."""
        await self._set(job_id, state=JobState.PENDING, run_after=utcnow(), attempts=Job.attempts - 1)

    async def retry(self, adventure_id: str, kind: str | None = None) -> int:
        """Give an adventure's failed jobs one more attempt each."""
        query = update(Job).where(Job.adventure_id == adventure_id, Job.state == JobState.FAILED)
        if kind:
            query = query.where(Job.kind == kind)
        query = query.values(state=JobState.PENDING, run_after=utcnow(), attempts=Job.attempts - 1)
        return await self.sessions.write(lambda session: session.execute(query).rowcount or 0)

    async def for_adventure(self, adventure_id: str) -> list[Job]:
        return await self.sessions.read(
            lambda session: list(session.scalars(select(Job).where(Job.adventure_id == adventure_id)))
        )

    async def listing(self, states: tuple[JobState, ...] = (JobState.PENDING, JobState.RUNNING, JobState.FAILED)
                      ) -> list[Job]:
        return await self.sessions.read(
            lambda session: list(session.scalars(select(Job).where(Job.state.in_(states)).order_by(Job.id)))
        )

    async def next_due(self, kinds: Collection[str] | None = None) -> datetime | None:
        query = select(Job.run_after).where(Job.state == JobState.PENDING)
        if kinds is not None:
            query = query.where(Job.kind.in_(sorted(kinds)))
        return await self.sessions.read(lambda session: session.scalar(query.order_by(Job.run_after).limit(1)))

    async def _set(self, job_id: int, **values) -> None:
        await self.sessions.write(lambda session: _set(session, job_id, **values))


def _claim_first(session: Session, candidates: Iterable[int]) -> Job | None:
    """The first candidate still pending, marked running; another worker may have taken some."""
    for job_id in candidates:
        claimed = session.scalar(
            update(Job).where(Job.id == job_id, Job.state == JobState.PENDING)
            .values(state=JobState.RUNNING, attempts=Job.attempts + 1, started_at=utcnow()).returning(Job)
        )
        if claimed is not None:
            return claimed
    return None


def _set(session: Session, job_id: int, **values) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def backoff(attempt: int, base: float = 2.0) -> timedelta:
    return timedelta(seconds=base * 2 ** (attempt - 1))
