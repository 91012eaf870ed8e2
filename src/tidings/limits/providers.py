"""ProviderLimits: whether a send may go to a provider now, by its rate and its breaker.

The delivery workers ask before each send. A refusal is not a failure: the job comes back
later without counting an attempt (see ProviderDelivery). Buckets are per channel and
provider, in the shared RateLimiter, so a rate holds across every worker process when the
limiter is Redis; breakers are per process (see breaker.py for why).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping

from tidings.limits.base import RateLimiter
from tidings.limits.breaker import CircuitBreaker

log = logging.getLogger(__name__)
# Webhooks go to each subscriber's own endpoint: one customer's dead server says nothing about
# the others', so that channel has no breaker (its retries and dead letters are per delivery).
UNBROKEN_CHANNELS = frozenset({"webhook"})


def provider_burst(rate: float) -> int:
    """A provider's bucket holds one second of sends (at least one)."""
    return max(1, math.ceil(rate))


class ProviderLimits:
    """`rates` is sends per second by provider name (absent or 0: unlimited).

    `clock` (monotonic seconds) drives the breakers; tests replace it to move time.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        rates: Mapping[str, float],
        *,
        failures: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.rates = dict(rates)
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, channel: str, provider: str) -> CircuitBreaker:
        name = f"{channel}:{provider}"
        if name not in self._breakers:
            self._breakers[name] = CircuitBreaker(
                name, failures=self.failures, cooldown=self.cooldown, clock=lambda: self.clock()
            )
        return self._breakers[name]

    async def wait(self, channel: str, provider: str) -> float:
        """0 when a send may go now; otherwise the seconds to wait before asking again."""
        rate = self.rates.get(provider, 0.0)
        if rate > 0:
            try:
                decision = await self.limiter.hit(
                    f"provider:{channel}:{provider}", rate=rate, burst=provider_burst(rate)
                )
            except Exception as exc:
                # The limiter's store is down: send anyway rather than stop every delivery.
                log.warning("rate limiter unavailable, %s sends unlimited: %s", provider, exc)
            else:
                if not decision.allowed:
                    # Spread the waiting jobs, so they do not all come back for the same token.
                    spread = decision.retry_after + random.uniform(0, 1.0 / rate)
                    return spread * (1 + random.random())
        if channel in UNBROKEN_CHANNELS:
            return 0.0
        # Asked after the rate, so a half-open trial is only handed out to a send that goes.
        return self.breaker(channel, provider).wait()

    def record(self, channel: str, provider: str, *, transient_failure: bool) -> None:
        """How a send went. Only transient failures count against a provider: a permanent
        one (a bad address) says the provider is up and answering."""
        if channel in UNBROKEN_CHANNELS:
            return
        breaker = self.breaker(channel, provider)
        if transient_failure:
            breaker.failed()
        else:
            breaker.succeeded()
