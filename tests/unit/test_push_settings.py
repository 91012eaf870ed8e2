"""Push and SMS settings: which providers they turn on, what a half configuration says, and
VAPID keys that are generated once and then kept."""

from __future__ import annotations

import pytest

from tidings.channels.registry import Providers, push_providers, twilio_provider, vapid_keys
from tidings.channels.webpush_crypto import VapidKeys
from tidings.config import Settings, load_settings


class SettingsTable:
    """A stand-in for store.keys.setting: (name, default) -> the stored value."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def __call__(self, name: str, default: str) -> str:
        return self.values.setdefault(name, default)


async def test_vapid_keys_are_generated_once_and_then_reused() -> None:
    table = SettingsTable()
    first = await vapid_keys(Settings(), table)
    second = await vapid_keys(Settings(), table)
    assert first.public_key_b64url == second.public_key_b64url
    assert list(table.values) == ["vapid_private_key"]


async def test_a_configured_vapid_key_is_used_as_given() -> None:
    pem = VapidKeys.generate().to_pem().decode()
    keys = await vapid_keys(Settings(vapid_private_key=pem), SettingsTable())
    assert keys.public_key_b64url == VapidKeys.from_pem(pem).public_key_b64url


async def test_a_malformed_vapid_key_names_its_setting() -> None:
    with pytest.raises(ValueError, match="TIDINGS_VAPID_PRIVATE_KEY"):
        await vapid_keys(Settings(vapid_private_key="/no/such/key.pem"), SettingsTable())


async def test_no_push_provider_without_settings_and_web_push_with_a_subject() -> None:
    providers = Providers()
    vapid = VapidKeys.generate()
    try:
        assert push_providers(Settings(), providers, vapid) == {}
        found = push_providers(Settings(vapid_subject="mailto:ops@example.com"), providers, vapid)
        assert list(found) == ["webpush"]
        https = Settings(public_url="https://tidings.example.com")
        assert list(push_providers(https, providers, vapid)) == ["webpush"]
    finally:
        await providers.close()


async def test_an_apns_key_without_its_ids_is_refused_by_name() -> None:
    providers = Providers()
    try:
        with pytest.raises(ValueError, match="TIDINGS_APNS_KEY_ID, TIDINGS_APNS_TEAM_ID"):
            push_providers(
                Settings(apns_key_file="/k.p8", apns_topic="a.b"), providers, VapidKeys.generate()
            )
    finally:
        await providers.close()


async def test_a_vapid_subject_that_is_not_mailto_or_https_is_refused() -> None:
    providers = Providers()
    try:
        with pytest.raises(ValueError, match="TIDINGS_VAPID_SUBJECT"):
            push_providers(
                Settings(vapid_subject="ops@example.com"), providers, VapidKeys.generate()
            )
    finally:
        await providers.close()


async def test_twilio_reports_status_to_the_public_feedback_endpoint() -> None:
    providers = Providers()
    try:
        settings = Settings(
            public_url="https://t.example.com/",
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token="secret",
            twilio_from="+15005550006",
        )
        provider = twilio_provider(settings, providers.http)
        assert provider is not None
        assert provider._callback == "https://t.example.com/v1/providers/twilio/events"
        assert twilio_provider(Settings(), providers.http) is None
        with pytest.raises(ValueError, match="From number or a Messaging Service"):
            twilio_provider(
                Settings(twilio_account_sid="AC1", twilio_auth_token="x"), providers.http
            )
    finally:
        await providers.close()


def test_push_secrets_are_masked_and_settings_load_from_the_environment() -> None:
    settings = load_settings(
        {
            "TIDINGS_VAPID_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----…",
            "TIDINGS_TWILIO_AUTH_TOKEN": "secret",
            "TIDINGS_APNS_SANDBOX": "1",
        },
        dotenv=None,
    )
    shown = settings.masked()
    assert (shown["vapid_private_key"], shown["twilio_auth_token"]) == ("***", "***")
    assert settings.apns_sandbox is True
