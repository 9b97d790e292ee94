"""Reading a test server's SQLite file directly, to check what was really stored; the
store's sessions on a migrated database; making and dropping PostgreSQL databases for tests
and benchmarks."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator

import asyncpg

from service.store.db import Sessions, create_engine, migrate_async, session_factory


@contextlib.asynccontextmanager
async def migrated_sessions(database_url: str) -> AsyncIterator[Sessions]:
    """The store's sessions on the database, migrated to the newest schema; disposed after."""
    await migrate_async(database_url)
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def rows(database_url: str, query: str, *params) -> list[tuple]:
    path = database_url.split(":///", 1)[1]
    with sqlite3.connect(path, timeout=10) as connection:
        return connection.execute(query, params).fetchall()


def wait_until(condition, timeout: float, message: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"{message} (waited {timeout:.0f} s)")


async def postgres_admin(url: str, statement: str) -> None:
    """One statement (CREATE or DROP DATABASE) as the user `url` names."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def named_server(variable: str, required_by: str) -> str | None:
    """The URL of a test server named by the environment variable `variable`; where
    `required_by` is set to 1 (CI), a missing one stops the run instead of skipping its tests."""
    url = os.environ.get(variable)
    if not url and os.environ.get(required_by) == "1":
        raise RuntimeError(f"{required_by}=1 but {variable} is not set")
    return url
