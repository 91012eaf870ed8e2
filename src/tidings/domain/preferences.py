"""Which channels a notification takes for one user: reachability, then preferences."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tidings.domain.models import Channel, Device, Preferences, User

PUSH_PROVIDERS = frozenset({"fcm", "apns", "webpush"})


@dataclass(frozen=True, slots=True)
class ChannelDecision:
    channel: Channel
    suppressed_reason: str | None = None  # None: deliver

    @property
    def deliver(self) -> bool:
        return self.suppressed_reason is None


def unreachable_reason(channel: Channel, user: User, devices: Iterable[Device]) -> str | None:
    """Why `user` cannot be reached on `channel`, or None when it can."""
    if channel is Channel.IN_APP:
        return None
    if channel is Channel.EMAIL:
        return None if user.email else "unreachable: the user has no email address"
    if channel is Channel.SMS:
        return None if user.phone else "unreachable: the user has no phone number"
    active = [d for d in devices if d.active]
    if channel is Channel.PUSH:
        if any(d.provider in PUSH_PROVIDERS for d in active):
            return None
        return "unreachable: the user has no active push device"
    if user.data.get("webhook_url") or any(d.provider == "webhook" for d in active):
        return None
    return "unreachable: the user has no webhook_url and no webhook device"


def preference_reason(channel: Channel, category: str, prefs: Preferences) -> str | None:
    """Why the user's preferences block `channel` for `category`, or None when they allow it."""
    by_category = prefs.categories.get(category, {})
    if by_category.get(channel.value) is False:
        return f"preferences: {channel.value} is off for category {category}"
    if prefs.channels.get(channel.value) is False:
        return f"preferences: {channel.value} is off"
    return None


def decide_channels(
    *,
    requested: list[str] | None,
    category: str,
    critical: bool,
    user: User,
    devices: Iterable[Device],
    prefs: Preferences,
) -> list[ChannelDecision]:
    """One decision per channel the notification concerns, in a stable order.

    Requested channels each get a decision (suppressed when unreachable or turned off).
    With no request, every reachable channel is considered and unreachable ones are left out.
    A critical category ignores preferences, never reachability.
    """
    devices = list(devices)
    chosen = [Channel(c) for c in requested] if requested is not None else list(Channel)
    decisions = []
    for channel in dict.fromkeys(chosen):
        reason = unreachable_reason(channel, user, devices)
        if reason is not None and requested is None:
            continue
        if reason is None and not critical:
            reason = preference_reason(channel, category, prefs)
        decisions.append(ChannelDecision(channel, reason))
    return decisions
