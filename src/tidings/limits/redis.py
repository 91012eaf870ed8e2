"""RedisRateLimiter: the token bucket in Redis, so every process of a scaled-out deployment
shares one bucket per key.

One Lua script reads, refills and takes in a single atomic step (EVALSHA, falling back to
EVAL when the server has not seen the script). Time is the Redis server's own `TIME` unless a
`clock` is passed (tests): every process then measures with the same clock, and skew between
hosts cannot mint tokens. Each bucket key expires once it would be full again, since a full
bucket and a missing one mean the same, so idle keys cost no memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import NoScriptError

from tidings.limits.base import Decision

# KEYS[1] bucket; ARGV rate, burst, cost, now ("" for the server's TIME).
# Returns {allowed, tokens left as a string (Lua numbers would be truncated to integers)}.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local state = redis.call("HMGET", KEYS[1], "tokens", "at")
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
local elapsed = math.max(0, now - at)
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call("HSET", KEYS[1], "tokens", tostring(tokens), "at", tostring(now))
redis.call("PEXPIRE", KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets under `<prefix>:<key>` in the Redis at `url`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tidings:limits",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.prefix = prefix
        self.clock = clock
        self._redis = redis.Redis.from_url(url)
        self._sha: str | None = None

    async def hit(self, key: str, *, rate: float, burst: int, cost: int = 1) -> Decision:
        now = "" if self.clock is None else repr(self.clock())
        args = (f"{self.prefix}:{key}", repr(float(rate)), str(burst), str(cost), now)
        if self._sha is None:
            self._sha = await self._redis.script_load(TOKEN_BUCKET)
        try:
            allowed, left = await self._redis.evalsha(self._sha, 1, *args)  # type: ignore[misc]
        except NoScriptError:  # the server restarted or flushed its scripts
            allowed, left = await self._redis.eval(TOKEN_BUCKET, 1, *args)  # type: ignore[misc]
        tokens = float(left)
        return Decision(
            allowed=bool(allowed),
            limit=burst,
            remaining=max(0, math.floor(tokens)),
            reset_seconds=(burst - tokens) / rate,
            retry_after=0.0 if allowed else (cost - tokens) / rate,
        )

    async def ping(self) -> None:
        await self._redis.ping()  # type: ignore[misc]

    async def close(self) -> None:
        await self._redis.aclose()
