"""Delivery settings: retry schedules per channel, concurrency per channel, checked at load."""

import pytest

from tidings.config import load_settings


def test_a_channel_schedule_overrides_the_default_for_that_channel_only():
    settings = load_settings(
        {"TIDINGS_RETRY_SCHEDULE": "1s,2s", "TIDINGS_RETRY_SCHEDULE_EMAIL": "30s"}, dotenv=None
    )

    assert settings.retry_policy("email").schedule == (30.0,)
    assert settings.retry_policy("webhook").schedule == (1.0, 2.0)


def test_a_malformed_schedule_is_refused_at_load_naming_the_variable():
    with pytest.raises(ValueError, match="TIDINGS_RETRY_SCHEDULE"):
        load_settings({"TIDINGS_RETRY_SCHEDULE_SMS": "5"}, dotenv=None)


def test_a_schedule_for_an_unknown_channel_is_refused():
    with pytest.raises(ValueError, match="TIDINGS_RETRY_SCHEDULE_FAX: no such channel"):
        load_settings({"TIDINGS_RETRY_SCHEDULE_FAX": "5s"}, dotenv=None)


def test_each_channel_has_its_own_concurrency():
    settings = load_settings({"TIDINGS_EMAIL_CONCURRENCY": "3"}, dotenv=None)

    assert (settings.concurrency("email"), settings.concurrency("push")) == (3, 8)


def test_a_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="TIDINGS_WEBHOOK_CONCURRENCY"):
        load_settings({"TIDINGS_WEBHOOK_CONCURRENCY": "0"}, dotenv=None)


def test_the_smtp_url_is_masked_because_it_holds_a_password():
    settings = load_settings({"TIDINGS_SMTP_URL": "smtp://u:secret@mail:587"}, dotenv=None)

    assert settings.masked()["smtp_url"] == "***"
