"""The retry policy: schedule parsing, exhaustion, Retry-After, jitter."""

from __future__ import annotations

import random

import pytest

from tidings.domain.models import Channel
from tidings.domain.retry import (
    DEFAULT_POLICY,
    MAX_DELAY,
    RetryPolicy,
    parse_schedule,
    policy_for,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s,5s,25s,2m,10m", (1.0, 5.0, 25.0, 120.0, 600.0)),
        ("500ms", (0.5,)),
        ("1.5s, 2m ,1h", (1.5, 120.0, 3600.0)),
        ("0s", (0.0,)),
        ("5 s", (5.0,)),
        ("none", ()),
        (" NONE ", ()),
    ],
)
def test_parse_schedule_reads_delays_with_units(text: str, expected: tuple[float, ...]) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty retry schedule"),
        ("   ", "empty retry schedule"),
        ("5", "has no unit"),
        ("1s,,5s", "bad retry delay ''"),
        ("-1s", "bad retry delay '-1s'"),
        ("5d", "bad retry delay '5d'"),
        ("1e3s", "bad retry delay '1e3s'"),
        ("s", "bad retry delay 's'"),
        ("1s;5s", "bad retry delay '1s;5s'"),
    ],
)
def test_parse_schedule_refuses_bad_input_clearly(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_schedule(text)


def test_default_policy_is_five_retries_then_dead() -> None:
    assert DEFAULT_POLICY.schedule == (1.0, 5.0, 25.0, 120.0, 600.0)
    assert DEFAULT_POLICY.max_attempts == 6


def test_next_delay_follows_the_schedule_without_jitter() -> None:
    policy = RetryPolicy((1.0, 5.0, 25.0), jitter=0)
    assert [policy.next_delay(n) for n in (1, 2, 3)] == [1.0, 5.0, 25.0]


def test_next_delay_is_none_once_the_schedule_is_spent() -> None:
    policy = RetryPolicy((1.0, 5.0), jitter=0)
    assert policy.next_delay(3) is None


def test_empty_schedule_is_dead_after_the_first_failure() -> None:
    assert RetryPolicy(()).next_delay(1) is None


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        DEFAULT_POLICY.next_delay(0)


def test_retry_after_longer_than_the_schedule_wins() -> None:
    policy = RetryPolicy((1.0,), jitter=0)
    assert policy.next_delay(1, retry_after=30.0) == 30.0


def test_retry_after_shorter_than_the_schedule_does_not_shorten_it() -> None:
    policy = RetryPolicy((60.0,), jitter=0)
    assert policy.next_delay(1, retry_after=2.0) == 60.0


def test_retry_after_is_capped_at_the_max_delay() -> None:
    policy = RetryPolicy((1.0,), jitter=0)
    assert policy.next_delay(1, retry_after=86_400.0) == MAX_DELAY
    assert policy.next_delay(1, retry_after=float("inf")) == MAX_DELAY


def test_retry_after_does_not_revive_an_exhausted_delivery() -> None:
    assert RetryPolicy((1.0,)).next_delay(2, retry_after=5.0) is None


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy((100.0,), jitter=0.2)
    rng = random.Random(1)
    delays = [policy.next_delay(1, rng=rng) for _ in range(2000)]
    assert all(d is not None and 80.0 <= d <= 120.0 for d in delays)
    assert len(set(delays)) > 1000  # it actually varies


def test_jitter_is_deterministic_with_a_seeded_rng() -> None:
    policy = RetryPolicy((1.0, 5.0, 25.0))
    first = [policy.next_delay(n, rng=random.Random(7)) for n in (1, 2, 3)]
    again = [policy.next_delay(n, rng=random.Random(7)) for n in (1, 2, 3)]
    assert first == again


@pytest.mark.parametrize(
    "kwargs",
    [{"schedule": (-1.0,)}, {"schedule": (float("nan"),)}, {"schedule": (1.0,), "jitter": 1.0}],
)
def test_policy_refuses_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_policy_for_uses_the_channel_override() -> None:
    policy = policy_for(Channel.EMAIL, "1s", {"email": "1m,1h"})
    assert policy.schedule == (60.0, 3600.0)


def test_policy_for_falls_back_to_the_default() -> None:
    assert policy_for("sms", "1s,2s", {"email": "1m"}).schedule == (1.0, 2.0)


def test_policy_for_matches_override_names_in_any_case() -> None:
    assert policy_for("push", "1s", {"PUSH": "none"}).schedule == ()


def test_policy_for_names_the_channel_of_a_bad_schedule() -> None:
    with pytest.raises(ValueError, match=r"retry schedule for email: .*no unit"):
        policy_for("email", "1s", {"email": "5"})
