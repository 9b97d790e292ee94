"""The durable job queue: jobs are rows, claimed by flipping their state, so a job
survives a crash and is picked up again when the server starts. Claims are fair: jobs of
adventures a player is playing (one with a choice made) come first, and among those, and
then among the rest, the adventure served longest ago goes next (round-robin), so a flood
of new adventures cannot starve a real player's summaries.

Several processes share the queue: a claim is the claimer's for a lease, renewed while it
runs (JobRunner); a running job whose lease has lapsed (its process died) is claimable
again. On PostgreSQL the candidates are locked as they are read (FOR UPDATE SKIP LOCKED), so
two processes never claim the same job; a job's result is stored only by the process that
holds it, so each result is stored once even when a slow process loses its lease.
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from service.domain.lifecycle import JobState
from service.store.adventures import ResultWrite
from service.store.db import Sessions
from service.store.models import Answer, Job, utcnow

# How many due jobs one claim looks at; jobs of chapters still streaming are passed over.
CLAIM_WINDOW = 20


_JOBS = Job.__table__
_ANSWERS = Answer.__table__


def _claimable_at(now):
    """Due and pending, or running under a lease that has lapsed (its process is gone)."""
    jobs = _JOBS.c
    lapsed = or_(jobs.lease_until.is_(None), jobs.lease_until < now)  # None: claimed before leases
    return or_(and_(jobs.state == JobState.PENDING, jobs.run_after <= now),
               and_(jobs.state == JobState.RUNNING, lapsed))


# The queue's statements are Core, built once: ORM statements built on each call cost the
# database's thread (and so the interpreter) milliseconds a job, ten times what SQLite took
# to run them. `:now` is the statement's time.
_ANY_KIND = bindparam("kinds", expanding=True)
_SERVED = _JOBS.alias("served")
# When a job of the same adventure last started (NULL: never): the longest-unserved goes next.
_LAST_SERVED = (select(func.max(_SERVED.c.started_at)).where(_SERVED.c.adventure_id == _JOBS.c.adventure_id)
                .correlate(_JOBS).scalar_subquery())
_PLAYED = case((exists().where(_ANSWERS.c.adventure_id == _JOBS.c.adventure_id), 0), else_=1)
_NOW = bindparam("now", type_=_JOBS.c.run_after.type)
_DUE = (select(_JOBS.c.id, _JOBS.c.kind, _JOBS.c.adventure_id, _JOBS.c.chapter_number).where(_claimable_at(_NOW))
        .order_by(_PLAYED, _LAST_SERVED.asc().nulls_first(), _JOBS.c.id).limit(CLAIM_WINDOW))
_DUE_OF_KINDS = _DUE.where(_JOBS.c.kind.in_(_ANY_KIND))
_TAKE = (
    update(_JOBS).where(_JOBS.c.id == bindparam("job_id"), _claimable_at(_NOW))
    .values(state=JobState.RUNNING, attempts=_JOBS.c.attempts + 1, started_at=_NOW, claimed_by=bindparam("owner"),
            lease_until=bindparam("lease_until", type_=_JOBS.c.lease_until.type))
    .returning(*_JOBS.c)
)
# A job's end, by the process that holds it: its state as it is now, then its new state.
_HOLDER = select(_JOBS.c.state, _JOBS.c.claimed_by).where(_JOBS.c.id == bindparam("job_id")).with_for_update()
_DONE = (update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
         .values(state=JobState.DONE, finished_at=_NOW, last_error=None, claimed_by=None))
# A job done without a worker, and when the next pending job is due.
_FINISH_PENDING = (
    update(_JOBS).where(_JOBS.c.kind == bindparam("of_kind"), _JOBS.c.adventure_id == bindparam("of_adventure"),
                        _JOBS.c.chapter_number == bindparam("of_number"), _JOBS.c.state == JobState.PENDING)
    .values(state=JobState.DONE, attempts=_JOBS.c.attempts + 1, started_at=_NOW, finished_at=_NOW, last_error=None,
            claimed_by=None)
)
_NEXT_DUE = select(_JOBS.c.run_after).where(_JOBS.c.state == JobState.PENDING).order_by(_JOBS.c.run_after).limit(1)
_NEXT_DUE_OF_KINDS = _NEXT_DUE.where(_JOBS.c.kind.in_(_ANY_KIND))
_AFTER = _JOBS.c.run_after > bindparam("after", type_=_JOBS.c.run_after.type)
_NEXT_DUE_AFTER, _NEXT_DUE_OF_KINDS_AFTER = _NEXT_DUE.where(_AFTER), _NEXT_DUE_OF_KINDS.where(_AFTER)


class JobQueue:
    def __init__(self, sessions: Sessions, owner: str = "this process", lease_seconds: float = 30.0):
        self.sessions = sessions
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self._locks = sessions.dialect != "sqlite"

    async def recover(self) -> int:
        """At start-up of the only process: jobs a stopped process was running are pending
        again, and those it held for a drawing of its own (never attempted) are due now."""
        def recover(session: Session) -> int:
            now = utcnow()
            session.execute(update(Job).where(Job.state == JobState.PENDING, Job.attempts == 0, Job.run_after > now)
                            .values(run_after=now))
            return session.execute(update(Job).where(Job.state == JobState.RUNNING)
                                   .values(state=JobState.PENDING, claimed_by=None)).rowcount or 0

        return await self.sessions.write(recover)

    async def due_now(self, kind: str, adventure_id: str, number: int) -> None:
        """A pending job held for a drawing that could not end it is due at once."""
        await self.sessions.write(lambda session: session.execute(
            update(Job).where(Job.kind == kind, Job.adventure_id == adventure_id, Job.chapter_number == number,
                              Job.state == JobState.PENDING).values(run_after=utcnow())))

    async def claim(self, skip: set[tuple[str, int]] = frozenset(), kinds: Collection[str] | None = None,
                    while_streaming: Collection[str] = (), passed: Collection[tuple[str, str, int]] = ()
                    ) -> Job | None:
        """Take the fairest due job (see above; of `kinds`, if given), unless its chapter is in
        `skip` and its kind is not one of those that may run `while_streaming`, or it is
        `passed` over: (kind, adventure, chapter) of jobs being done outside the workers."""
        now = utcnow()
        query, params = (_DUE, {"now": now}) if kinds is None else (_DUE_OF_KINDS, {"now": now, "kinds": sorted(kinds)})

        def candidates(rows) -> list[int]:
            return [job_id for job_id, kind, adventure_id, number in rows
                    if (kind in while_streaming or (adventure_id, number) not in skip)
                    and (kind, adventure_id, number) not in passed]

        if self._locks:
            # One transaction: the candidates are locked as they are read, and those another
            # process holds are passed over; the first left is taken.
            locked = query.with_for_update(of=_JOBS, skip_locked=True)
            return await self.sessions.write(
                lambda session: self._take(session, candidates(session.execute(locked, params)), now))
        # SQLite: one process writes at a time. Finding candidates is a read: an idle queue
        # never takes the write lock.
        due = await self.sessions.read(lambda session: candidates(session.execute(query, params)))
        if not due:
            return None
        return await self.sessions.write(lambda session: self._take(session, due, now))

    def _take(self, session: Session, candidates: list[int], now: datetime) -> Job | None:
        """The first candidate still claimable, claimed; another process may have taken some."""
        for job_id in candidates:
            claimed = session.execute(_TAKE, {"job_id": job_id, "now": now, "owner": self.owner,
                                              "lease_until": now + self.lease}).first()
            if claimed is not None:
                return Job(**claimed._mapping)  # as the worker reads it: no session keeps it
        return None

    async def renew(self, job_ids: Collection[int]) -> None:
        """The jobs this process is running are still its own for another lease."""
        if job_ids:
            await self.sessions.write(lambda session: session.execute(
                update(Job).where(Job.id.in_(sorted(job_ids)), *self._held())
                .values(lease_until=utcnow() + self.lease)))

    async def done(self, job_id: int, result: ResultWrite | None = None) -> bool:
        """The job's result and its `done` are stored together: a crash leaves neither. Not
        when the job is done already or another process has taken it over (its lease had
        lapsed): then that process's result stands, and False is answered."""
        def finish(session: Session) -> bool:
            found = session.execute(_HOLDER, {"job_id": job_id}).first()
            if found is not None and (found.state == JobState.DONE or (
                    found.state == JobState.RUNNING and found.claimed_by not in (None, self.owner))):
                return False
            if result is not None:
                result(session)
            session.execute(_DONE, {"job_id": job_id, "now": utcnow()})
            return True

        return await self.sessions.write(finish)

    async def finish_pending(self, kind: str, adventure_id: str, number: int, result: ResultWrite | None) -> bool:
        """A job done without a worker (its result was made before it was due): stored as done
        with its result, unless it is not pending (not stored yet, or a worker has it, here
        or in another process); then False, and nothing is written. A player waits to see it
        (a picture): it is written ahead of the other jobs' writes."""
        def finish(session: Session) -> bool:
            ended = session.execute(_FINISH_PENDING, {"of_kind": kind, "of_adventure": adventure_id,
                                                      "of_number": number, "now": utcnow()}).rowcount
            if ended and result is not None:
                result(session)
            return bool(ended)

        return await self.sessions.write_soon(finish)

    async def failed(self, job_id: int, error: str) -> None:
        """The job's last attempt failed: it stays failed until someone retries it."""
        await self._set(job_id, state=JobState.FAILED, finished_at=utcnow(), last_error=error)

    async def retry_later(self, job_id: int, error: str, retry_at: datetime) -> None:
        """An attempt failed and the job has attempts left: pending again from `retry_at`."""
        await self._set(job_id, state=JobState.PENDING, run_after=retry_at, last_error=error)

    async def set_back(self, job_id: int) -> None:
        """Pending again at once; an attempt that was set back, not failed, does not count."""
        await self._set(job_id, state=JobState.PENDING, run_after=utcnow(), attempts=Job.attempts - 1)

    def _held(self) -> list:
        return [Job.state == JobState.RUNNING, Job.claimed_by == self.owner]

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

    async def next_due(self, kinds: Collection[str] | None = None, after: datetime | None = None) -> datetime | None:
        """When the next pending job (of `kinds`) is due: the first due after `after`, if given."""
        params = {"kinds": sorted(kinds or ()), "after": after}
        query = _NEXT_DUE if kinds is None else _NEXT_DUE_OF_KINDS
        if after is not None:
            query = _NEXT_DUE_AFTER if kinds is None else _NEXT_DUE_OF_KINDS_AFTER
        return await self.sessions.read(lambda session: session.scalar(query, params))

    async def _set(self, job_id: int, **values) -> None:
        """Ends this process's attempt at a job it holds (a job taken over is left alone)."""
        await self.sessions.write(lambda session: _set(session, job_id, *self._held(), claimed_by=None, **values))


def _set(session: Session, job_id: int, *condition, **values) -> bool:
    return session.execute(update(Job).where(Job.id == job_id, *condition).values(**values)).rowcount > 0


def backoff(attempt: int, base: float = 2.0) -> timedelta:
    """How long a failed job waits before its next attempt: doubling from `base`. A job's
    retry is durable (its next time is stored, and a restarted server keeps it), which the
    in-process retry loops of tenacity or stamina do not do; this formula is all they would add."""
    return timedelta(seconds=base * 2 ** (attempt - 1))
