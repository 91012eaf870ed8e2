"""The push channel's provider: one message per device, handed to the provider of its kind
(FCM, APNs or Web Push), whichever of them are configured."""

from __future__ import annotations

from collections.abc import Mapping

from tidings.channels.base import Message, PermanentError, Provider, Receipt
from tidings.domain.models import Channel, Device

# What turns each push provider on, for the error a device of an unconfigured kind gets.
_SETTING = {
    "fcm": "TIDINGS_FCM_CREDENTIALS",
    "apns": "TIDINGS_APNS_KEY_FILE (with _KEY_ID, _TEAM_ID, _TOPIC)",
    "webpush": "TIDINGS_VAPID_SUBJECT",
}


class PushRouter:
    """Sends `message.device` through the provider named by `device.provider`."""

    name = "push"
    channel = Channel.PUSH

    def __init__(self, by_provider: Mapping[str, Provider]) -> None:
        self.by_provider = dict(by_provider)

    def provider_name(self, device: Device) -> str:
        """The provider an attempt to this device is recorded under."""
        return device.provider

    async def send(self, message: Message) -> Receipt:
        device = message.device
        if device is None:
            raise PermanentError("a push message needs a device")
        provider = self.by_provider.get(device.provider)
        if provider is None:
            setting = _SETTING.get(device.provider)
            hint = f": set {setting}" if setting else ""
            raise PermanentError(f"{device.provider} push is not configured{hint}")
        return await provider.send(message)

    async def close(self) -> None:
        for provider in self.by_provider.values():
            await provider.close()
