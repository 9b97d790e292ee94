"""Several Lanternpath processes on one PostgreSQL database and one Redis, as several hosts
behind a load balancer would run: each test sends each request to the process it chooses.
They need servers named by TEST_POSTGRES_URL and TEST_REDIS_URL (CI starts both and sets
REQUIRE_REDIS=1: there a missing Redis fails the run instead of skipping the tests).
"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.database import named_server
from tests.support.server_process import ServerProcess

REDIS_URL = named_server("TEST_REDIS_URL", "REQUIRE_REDIS")
NO_REDIS = ("Tests of several processes skipped: no Redis named by TEST_REDIS_URL (and no PostgreSQL by "
            "TEST_POSTGRES_URL). Set it to redis://127.0.0.1:6379/0 (Debian: apt-get install -y redis-server; "
            ".ci/run shows the whole set-up)")


class Processes:
    """Server processes sharing one database and one Redis, and a player who holds one cookie
    and sends each request to whichever process a test names."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.servers: list[ServerProcess] = []
        self.cookies: dict[str, str] = {}

    def start(self, count: int, args: list[str] | None = None) -> list[ServerProcess]:
        for _ in range(count):
            log = self.log_dir / f"server-{len(self.servers)}.log"
            self.servers.append(ServerProcess(self.env, log, args=args).start(timeout=90))
        return self.servers

    def client(self, index: int) -> httpx.Client:
        """A client of process `index` with the player's cookies (kept in sync by `keep`)."""
        return httpx.Client(base_url=self.servers[index].base_url, timeout=30, cookies=self.cookies)

    def keep(self, client: httpx.Client) -> None:
        self.cookies.update(dict(client.cookies))

    def stop(self) -> None:
        for server in self.servers:
            if server.process is not None:
                server.kill()


def require_servers() -> None:
    from tests.test_postgres import ADMIN_URL, NO_SERVER

    if not ADMIN_URL:
        pytest.skip(NO_SERVER)
    if not REDIS_URL:
        pytest.skip(NO_REDIS)


def forget_start_limits() -> None:
    """Every player here comes from 127.0.0.1: one test's starts must not count in the next."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter("lanternpath:starts:*"):
            client.delete(key)
    finally:
        client.close()
