"""The durable job queue: jobs are rows, claimed by flipping their state, so a job
survives a crash and is picked up again when the server starts.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from service.store.db import Sessions
from service.store.models import Job, utcnow


class JobQueue:
    def __init__(self, sessions: Sessions):
        self.sessions = sessions

    async def recover(self) -> int:
        """At start-up: jobs a stopped process was running are pending again."""
        async with self.sessions.begin() as session:
            result = await session.execute(update(Job).where(Job.state == "running").values(state="pending"))
            return result.rowcount or 0

    async def claim(self, skip: set[tuple[str, int]] = frozenset()) -> Job | None:
        """Take the oldest due pending job, unless its chapter is in `skip`."""
        async with self.sessions() as session:
            candidates = await session.scalars(
                select(Job).where(Job.state == "pending", Job.run_after <= utcnow()).order_by(Job.id).limit(20)
            )
            ids = [job.id for job in candidates if (job.adventure_id, job.chapter_number) not in skip]
        for job_id in ids:
            async with self.sessions.begin() as session:
                claimed = await session.execute(
                    update(Job).where(Job.id == job_id, Job.state == "pending")
                    .values(state="running", attempts=Job.attempts + 1, started_at=utcnow())
                )
                if claimed.rowcount == 1:
                    return await session.get(Job, job_id)
        return None

    async def done(self, job_id: int) -> None:
        await self._set(job_id, state="done", finished_at=utcnow(), last_error=None)

    async def failed(self, job_id: int, error: str, retry_at: datetime | None) -> None:
        if retry_at is None:
            await self._set(job_id, state="failed", finished_at=utcnow(), last_error=error)
        else:
            await self._set(job_id, state="pending", run_after=retry_at, last_error=error)

    async def set_back(self, job_id: int) -> None:
        """Pending again at once; an attempt that was set back, not failed, does not count."""
        await self._set(job_id, state="pending", run_after=utcnow(), attempts=Job.attempts - 1)

    async def retry(self, adventure_id: str, kind: str | None = None) -> int:
        """Give an adventure's failed jobs one more attempt each."""
        async with self.sessions.begin() as session:
            query = update(Job).where(Job.adventure_id == adventure_id, Job.state == "failed")
            if kind:
                query = query.where(Job.kind == kind)
            result = await session.execute(query.values(state="pending", run_after=utcnow(), attempts=Job.attempts - 1))
            return result.rowcount or 0

    async def for_adventure(self, adventure_id: str) -> list[Job]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Job).where(Job.adventure_id == adventure_id)))

    async def listing(self, states: tuple[str, ...] = ("pending", "running", "failed")) -> list[Job]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Job).where(Job.state.in_(states)).order_by(Job.id)))

    async def next_due(self) -> datetime | None:
        async with self.sessions() as session:
            return await session.scalar(
                select(Job.run_after).where(Job.state == "pending").order_by(Job.run_after).limit(1)
            )

    async def _set(self, job_id: int, **values) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(**values))


def backoff(attempt: int, base: float = 2.0) -> timedelta:
    return timedelta(seconds=base * 2 ** (attempt - 1))
