"""How many adventures one client address may start: a leaky bucket per address (aiolimiter)
that holds `burst` starts and lets one more through every `seconds`. Starting an adventure
costs model calls, so past the limit nothing is started at all.

The address is the connection's own, or, behind a proxy named in FORWARDED_ALLOW_IPS, the
one that proxy puts in X-Forwarded-For (uvicorn's ProxyHeadersMiddleware, see web/app.py).
With REDIS_URL the buckets are in Redis (shared/limits.py), shared by every process; should
Redis fail, each process counts on its own meanwhile rather than refuse every start.
"""
from __future__ import annotations

import logging
import math

from aiolimiter import AsyncLimiter
from redis.exceptions import RedisError
from starlette.requests import Request

from service.shared.limits import SharedStartLimit

log = logging.getLogger(__name__)

# Buckets are swept of idle addresses when there are this many, and then again at twice
# as many as were left: memory stays in proportion to the addresses seen lately.
FIRST_SWEEP = 1024


class TooManyStarts(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class StartLimit:
    def __init__(self, burst: int, seconds: float, shared: SharedStartLimit | None = None):
        self.burst = burst
        self.seconds = seconds
        self.shared = shared
        self._buckets: dict[str, AsyncLimiter] = {}
        self._sweep_at = FIRST_SWEEP

    async def admit(self, address: str) -> None:
        """Counts one start from `address`, or raises TooManyStarts if its bucket is full."""
        if self.burst <= 0:
            return
        if self.shared is not None:
            try:
                wait = await self.shared.wait_for(address)
            except (RedisError, OSError) as exc:
                log.warning("the shared start limit is out of reach (%r): this process counts alone", exc)
            else:
                if wait:
                    raise TooManyStarts(wait)
                return
        bucket = self._buckets.get(address)
        if bucket is None:
            self._sweep()
            bucket = self._buckets[address] = AsyncLimiter(self.burst, self.burst * self.seconds)
        if not bucket.has_capacity():
            # A full bucket frees one start within `seconds`.
            raise TooManyStarts(max(1, math.ceil(self.seconds)))
        await bucket.acquire()  # returns at once: there is room

    def _sweep(self) -> None:
        if len(self._buckets) < self._sweep_at:
            return
        self._buckets = {a: b for a, b in self._buckets.items() if not b.has_capacity(self.burst)}
        self._sweep_at = max(FIRST_SWEEP, 2 * len(self._buckets))
