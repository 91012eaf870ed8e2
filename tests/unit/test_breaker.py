"""The circuit breaker's states on a clock the test moves: closed, open, half-open."""

from __future__ import annotations

import pytest

from tests.clock import FakeClock
from tidings.limits.breaker import BreakerState, CircuitBreaker


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("smtp", failures=3, cooldown=30, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.failed()


def test_a_new_breaker_lets_calls_through(breaker):
    assert breaker.state is BreakerState.CLOSED
    assert breaker.wait() == 0


def test_fewer_failures_in_a_row_than_the_threshold_keep_it_closed(breaker):
    fail(breaker, 2)
    assert breaker.wait() == 0


def test_a_success_resets_the_count_of_failures(breaker):
    fail(breaker, 2)
    breaker.succeeded()
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_the_threshold_of_failures_in_a_row_opens_it_for_the_cooldown(breaker, clock):
    fail(breaker, 3)
    assert breaker.state is BreakerState.OPEN
    assert breaker.wait() == pytest.approx(30)
    clock.now += 10
    assert breaker.wait() == pytest.approx(20)


def test_after_the_cooldown_one_trial_goes_through_and_the_others_wait(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.wait() == 0
    assert breaker.wait() > 0


def test_a_successful_trial_closes_it(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    breaker.wait()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.wait() == 0


def test_a_failed_trial_opens_it_for_another_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    breaker.wait()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert breaker.wait() == pytest.approx(30)


def test_a_breaker_needs_a_positive_threshold():
    with pytest.raises(ValueError, match="at least one"):
        CircuitBreaker("smtp", failures=0)


def test_a_trial_that_never_answers_is_replaced_after_another_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.now += 30
    assert breaker.wait() == 0
    clock.now += 30
    assert breaker.wait() == 0
