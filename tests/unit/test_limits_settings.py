"""Rate-limit and breaker settings: provider rates by name, and where buckets live."""

import pytest

from tidings.config import load_settings
from tidings.limits.registry import limits_url


def test_a_provider_rate_is_read_from_its_variable():
    settings = load_settings({"TIDINGS_SMTP_RATE": "10", "TIDINGS_TWILIO_RATE": "0.5"}, dotenv=None)
    assert settings.provider_rates == {"smtp": 10.0, "twilio": 0.5}


def test_providers_without_a_rate_are_unlimited():
    assert load_settings({}, dotenv=None).provider_rates == {}


def test_a_rate_for_an_unknown_provider_is_refused_at_load():
    with pytest.raises(ValueError, match="TIDINGS_SMPT_RATE: no such provider"):
        load_settings({"TIDINGS_SMPT_RATE": "10"}, dotenv=None)


def test_a_rate_that_is_not_a_number_is_refused_at_load():
    with pytest.raises(ValueError, match="TIDINGS_SMTP_RATE='fast'"):
        load_settings({"TIDINGS_SMTP_RATE": "fast"}, dotenv=None)


def test_a_breaker_needs_at_least_one_failure_to_open():
    with pytest.raises(ValueError, match="TIDINGS_BREAKER_FAILURES"):
        load_settings({"TIDINGS_BREAKER_FAILURES": "0"}, dotenv=None)


@pytest.mark.parametrize(
    ("limits", "bus", "expected"),
    [
        ("", "memory://", "memory://"),
        ("", "redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://limits:6379/1", "redis://cache:6379/0", "redis://limits:6379/1"),
    ],
)
def test_buckets_live_in_the_limits_url_else_the_bus_redis_else_memory(limits, bus, expected):
    assert limits_url(limits, bus) == expected
