"""Which provider sends each channel, built from the settings (and server secrets) at start.

A channel with no provider gets no worker: its deliveries wait, `pending`, until one is
configured. `capture` replaces every provider with a CaptureProvider (development).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx

from tidings.channels.base import Message, Provider, Receipt
from tidings.channels.capture import CaptureProvider
from tidings.channels.smtp import SmtpConfig, SmtpProvider
from tidings.channels.webhook import WebhookProvider
from tidings.channels.webhook_signing import new_secret
from tidings.config import Settings
from tidings.domain.models import Channel

log = logging.getLogger(__name__)

# Channels a provider delivers; in_app has its own worker (pipeline/in_app.py).
PROVIDER_CHANNELS = (Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.WEBHOOK)
WEBHOOK_SECRET = "webhook_secret"  # its name in server_settings

Setting = Callable[[str, str], Awaitable[str]]
"""(name, default) -> the stored server setting, the default stored first if there was none."""


class LoggedCapture(CaptureProvider):
    """A CaptureProvider that also logs each message, so `serve --capture` shows its sends."""

    async def send(self, message: Message) -> Receipt:
        receipt = await super().send(message)
        log.info(
            "captured %s %s to %s: %s",
            message.channel.value,
            message.delivery_id,
            message.address or message.user.id,
            message.content,
        )
        return receipt


class Providers:
    """The provider of each configured channel, and what they share (one HTTP client)."""

    def __init__(self) -> None:
        self.by_channel: dict[Channel, Provider] = {}
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"user-agent": "Tidings"},
        )

    async def close(self) -> None:
        for provider in self.by_channel.values():
            try:
                await provider.close()
            except Exception:
                log.exception("closing the %s provider failed", provider.name)
        await self.http.aclose()


async def open_providers(settings: Settings, setting: Setting) -> Providers:
    """Build the providers the settings ask for; ValueError for a malformed configuration."""
    providers = Providers()
    try:
        if settings.capture:
            for channel in PROVIDER_CHANNELS:
                providers.by_channel[channel] = LoggedCapture(channel)
            return providers
        if settings.smtp_url:
            if not settings.email_from:
                raise ValueError("TIDINGS_SMTP_URL is set but TIDINGS_EMAIL_FROM is not")
            try:
                config = SmtpConfig.from_url(settings.smtp_url, settings.email_from)
            except ValueError as exc:
                raise ValueError(f"TIDINGS_SMTP_URL: {exc}") from None
            providers.by_channel[Channel.EMAIL] = SmtpProvider(
                config, pool_size=max(1, settings.email_concurrency)
            )
        # Webhooks need nothing but a signing secret, generated once and kept in the store.
        secret = await setting(WEBHOOK_SECRET, new_secret())
        providers.by_channel[Channel.WEBHOOK] = WebhookProvider(
            providers.http, secret, allow_private=settings.webhook_allow_private
        )
    except BaseException:
        await providers.close()
        raise
    return providers
