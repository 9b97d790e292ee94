"""Reading a test server's SQLite file directly, to check what was really stored."""
from __future__ import annotations

import sqlite3
import time


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
