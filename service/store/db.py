"""The database engine, the schema's migrations, and where the repositories' work runs.

Every read and every write transaction is one plain function of an ORM session. On
SQLite it runs whole in a worker thread, writers one after another on a thread of their
own; on PostgreSQL it runs on the event loop through asyncpg. Work no player's story text
waits on (the jobs, the pictures' streams and bytes) goes through `sessions.background`,
which never queues ahead of the rest: one such write and BACKGROUND_READS such reads at a
time, the reads on threads of their own. Of its writes, one a player waits to see (a
picture drawn for a chapter being read) takes the next turn, ahead of the jobs' queue.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from service.config import ROOT

T = TypeVar("T")
Work = Callable[[Session], T]
# Reads run side by side (WAL lets readers in while one writes); each holds a connection.
SQLITE_READERS = 4
# Background reads at a time (on SQLite, their threads): a player's read never waits behind them.
BACKGROUND_READS = 2


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    # ConfigParser treats % as interpolation; URLs may hold escaped characters.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def migrate(database_url: str) -> None:
    """Upgrade the schema to the newest revision (blocking: call from a thread inside a loop)."""
    command.upgrade(alembic_config(database_url), "head")


async def migrate_async(database_url: str) -> None:
    # Alembic's async env.py calls asyncio.run, which cannot nest inside a running loop.
    await asyncio.to_thread(migrate, database_url)


def create_engine(database_url: str) -> AsyncEngine:
    """The engine named by DATABASE_URL; `session_factory` says how work runs on it."""
    return create_async_engine(database_url, pool_pre_ping=not database_url.startswith("sqlite"))


def session_factory(engine: AsyncEngine) -> Sessions:
    if engine.dialect.name == "sqlite":
        return SqliteSessions(engine)
    return Sessions(engine)


class Sessions:
    """`await sessions.read(work)` runs `work(session)` and returns what it returns;
    `await sessions.write(work)` does the same inside one transaction, committed at its end.
    `sessions.background` does both for work no player waits on."""

    def __init__(self, engine: AsyncEngine):
        self.dialect = engine.dialect.name
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.background = Background(self)

    async def read(self, work: Work[T]) -> T:
        async with self._sessions() as session:
            return await session.run_sync(work)

    async def write(self, work: Work[T]) -> T:
        async with self._sessions.begin() as session:
            return await session.run_sync(work)

    def lane(self, background: bool) -> Sessions | Background:
        """These sessions, or with `background` their background lane."""
        return self.background if background else self

    async def write_soon(self, work: Work[T]) -> T:
        """A write a player waits to see. Here it is a write like any other; in the
        background lane (Background.write_soon) it goes ahead of that lane's queue."""
        return await self.write(work)

    async def read_behind(self, work: Work[T]) -> T:
        """A background read (Background limits how many at once)."""
        return await self.read(work)


class Background:
    """The same database for the jobs and the picture streams: at most one of its writes is
    handed to the database at a time, so that a player's write (a choice, a finished
    chapter) waits behind one of them at most, never behind a queue of them (sixteen picture
    jobs ending at once held a choice for 100-200 ms); its reads are limited the same way."""

    def __init__(self, sessions: Sessions):
        self.dialect = sessions.dialect
        self._sessions = sessions
        self._write_turns = Turns()
        self._read_turns = asyncio.Semaphore(BACKGROUND_READS)

    def lane(self, background: bool) -> Background:
        """Already the background lane, whichever is asked for (a store built on it stays in it)."""
        return self

    async def read(self, work: Work[T]) -> T:
        async with self._read_turns:
            return await self._sessions.read_behind(work)

    async def write(self, work: Work[T]) -> T:
        async with self._write_turns.turn():
            return await self._sessions.write(work)

    async def write_soon(self, work: Work[T]) -> T:
        """The next write handed to the database, ahead of the others waiting (a picture's
        store waited up to half a second behind fifty players' summary jobs)."""
        async with self._write_turns.turn(first=True):
            return await self._sessions.write(work)


class Turns:
    """One holder at a time, as a lock; those who ask `first` are served before the others,
    each in the order they asked."""

    def __init__(self) -> None:
        self._busy = False
        self._first: deque[asyncio.Future] = deque()
        self._others: deque[asyncio.Future] = deque()

    @contextlib.asynccontextmanager
    async def turn(self, first: bool = False) -> AsyncIterator[None]:
        if self._busy:
            waiting = self._first if first else self._others
            given = asyncio.get_running_loop().create_future()
            waiting.append(given)
            try:
                await given
            except asyncio.CancelledError:
                if given.done() and not given.cancelled():
                    self._pass_on()  # the turn came as the wait was cancelled: the next one has it
                else:
                    with contextlib.suppress(ValueError):  # passed over already, as done
                        waiting.remove(given)
                raise
        self._busy = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        for waiting in (self._first, self._others):
            while waiting:
                given = waiting.popleft()
                if not given.done():
                    given.set_result(None)  # still busy: theirs now
                    return
        self._busy = False


class SqliteSessions(Sessions):
    """aiosqlite sends every statement, cursor and commit to its thread and back through
    the event loop: about ten round trips for one small transaction, each waiting its turn
    on a busy loop while the write lock is held. Here a whole transaction is one trip."""

    def __init__(self, engine: AsyncEngine):
        self.dialect = engine.dialect.name
        self.background = Background(self)
        self._engine = _threaded_sqlite(engine)
        self._read_sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._engine.execution_options(sqlite_immediate=True),
                                            expire_on_commit=False)
        self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="sqlite-read")
        self._background_readers = ThreadPoolExecutor(BACKGROUND_READS, thread_name_prefix="sqlite-read-behind")
        # SQLite writes one at a time: one thread takes them in order, so none waits for the
        # lock in SQLite's busy loop and the next starts the moment the last commits.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")
        event.listen(engine.sync_engine, "engine_disposed", self._close)

    async def read(self, work: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, work)

    async def write(self, work: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._write, work)

    async def read_behind(self, work: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._background_readers, self._read, work)

    def _read(self, work: Work[T]) -> T:
        with self._read_sessions() as session:
            return work(session)

    def _write(self, work: Work[T]) -> T:
        with self._write_sessions.begin() as session:
            return work(session)

    def _close(self, _engine: Any) -> None:
        # Work already handed over finishes first: a write is never cut off halfway.
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._background_readers.shutdown(wait=True)
        self._engine.dispose()


def _threaded_sqlite(engine: AsyncEngine) -> Engine:
    """The same SQLite file through the standard sqlite3 driver, for use from threads."""
    threaded = create_sync_engine(
        engine.url.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=SQLITE_READERS + BACKGROUND_READS + 1, max_overflow=0,
    )
    event.listen(threaded, "connect", _sqlite_pragmas)
    event.listen(threaded, "begin", _sqlite_begin)
    return threaded


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The driver's own implicit BEGIN is turned off: _sqlite_begin says which kind of BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    # A transaction that reads first and writes later cannot wait for the lock once another
    # writer has committed: SQLite fails it at once with "database is locked". Write
    # transactions therefore take the write lock up front, where the busy timeout applies
    # (another process, such as `python -m service migrate`, may write to the same file).
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
