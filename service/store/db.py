"""The database engine and the schema's migrations.

SQLite runs in WAL mode with a busy timeout so that many players writing at once wait
for each other instead of failing with "database is locked".
"""
from __future__ import annotations

import asyncio
import contextlib

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from service.config import ROOT


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
    is_sqlite = database_url.startswith("sqlite")
    engine = create_async_engine(
        database_url,
        connect_args={"timeout": 30} if is_sqlite else {},
        pool_pre_ping=not is_sqlite,
        # SQLite writes one at a time anyway: a fixed pool never runs out under a crowd.
        **({"pool_size": 20, "max_overflow": 0} if is_sqlite else {}),
    )
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


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
    # transactions therefore take the write lock up front, where the busy timeout applies.
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Sessions:
    """`sessions()` opens a session for reading, `sessions.begin()` a write transaction."""

    def __init__(self, engine: AsyncEngine):
        self._read = async_sessionmaker(engine, expire_on_commit=False)
        self._write = async_sessionmaker(engine.execution_options(sqlite_immediate=True), expire_on_commit=False)
        # SQLite's busy handler polls with sleeps of up to 100 ms; writers of this process
        # queue in order here instead and find the lock free when their turn comes.
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def __call__(self):
        return self._read()

    @contextlib.asynccontextmanager
    async def begin(self):
        async with self._write_turn or contextlib.nullcontext():
            async with self._write.begin() as session:
                yield session


def session_factory(engine: AsyncEngine) -> Sessions:
    return Sessions(engine)
