"""The start limit shared by every server process: the same leaky bucket per client address as
web/start_limit.py (a burst of starts, then one more every `seconds`), kept in Redis as the
generic cell rate algorithm (one timestamp per address, updated atomically by a script), so
N processes behind a load balancer allow what one would, not N times as much.
"""
from __future__ import annotations

import math

from redis.asyncio import Redis

from service.shared.redis import start_bucket

# KEYS[1]: the address's bucket; ARGV: the seconds per start (T) and the burst (B).
# The bucket holds the theoretical arrival time (TAT) of the next start, in microseconds of
# Redis's own clock (the same for every host). A start at `now` is allowed when
# TAT - now <= (B - 1) * T; it then moves TAT on by T. Answers the microseconds to wait: 0 = allowed.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return tat - tolerance - now
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return 0
"""


class SharedStartLimit:
    def __init__(self, redis: Redis, burst: int, seconds: float):
        self.burst = burst
        self.seconds = seconds
        self._script = redis.register_script(_GCRA)

    async def wait_for(self, address: str) -> int:
        """Counts one start from `address` and answers 0, or answers the whole seconds to wait
        (at least 1) and counts nothing."""
        wait = int(await self._script(keys=[start_bucket(address)], args=[round(self.seconds * 1e6), self.burst]))
        return 0 if wait <= 0 else max(1, math.ceil(wait / 1e6))
