"""Which channels a notification takes: reachability first, then the user's switches."""

from __future__ import annotations

import pytest

from tidings.domain.models import Channel, Device, Preferences, User
from tidings.domain.preferences import decide_channels

FULL_USER = User(
    id="u", email="u@example.com", phone="+14155550100", data={"webhook_url": "https://x"}
)
PHONE = Device(id="d", user_id="u", provider="fcm", token="t")


def decide(
    requested, user=FULL_USER, devices=(PHONE,), prefs=None, critical=False, category="news"
):
    return {
        d.channel.value: d.suppressed_reason
        for d in decide_channels(
            requested=requested,
            category=category,
            critical=critical,
            user=user,
            devices=devices,
            prefs=prefs or Preferences(),
        )
    }


def test_no_request_means_every_reachable_channel():
    assert decide(None) == {c.value: None for c in Channel}


def test_no_request_leaves_out_unreachable_channels():
    assert decide(None, user=User(id="u"), devices=()) == {"in_app": None}


def test_requested_unreachable_channel_is_suppressed_with_reason():
    result = decide(["email", "sms"], user=User(id="u"))
    assert result["email"] == "unreachable: the user has no email address"
    assert result["sms"] == "unreachable: the user has no phone number"


def test_inactive_device_does_not_make_push_reachable():
    dead = Device(id="d", user_id="u", provider="apns", token="t", active=False)
    assert decide(["push"], devices=(dead,))["push"].startswith("unreachable")


@pytest.mark.parametrize(
    ("prefs", "blocked"),
    [
        (Preferences(channels={"email": False}), "preferences: email is off"),
        (
            Preferences(categories={"news": {"email": False}}),
            "preferences: email is off for category news",
        ),
    ],
)
def test_preferences_suppress_a_channel(prefs, blocked):
    assert decide(["email", "in_app"], prefs=prefs) == {"email": blocked, "in_app": None}


def test_category_switch_on_overrides_channel_off():
    prefs = Preferences(channels={"email": False}, categories={"news": {"email": True}})
    # A category explicitly on does not re-enable a channel the user turned off entirely.
    assert decide(["email"], prefs=prefs)["email"] == "preferences: email is off"


def test_critical_category_ignores_preferences_but_not_reachability():
    prefs = Preferences(channels={"email": False, "sms": False})
    result = decide(["email", "sms"], user=User(id="u", email="u@x.io"), prefs=prefs, critical=True)
    assert result == {"email": None, "sms": "unreachable: the user has no phone number"}


def test_repeated_channels_are_decided_once():
    assert list(decide(["in_app", "in_app"])) == ["in_app"]
