"""Which provider sends each channel, built from the settings (and server secrets) at start.

A channel with no provider gets no worker: its deliveries wait, `pending`, until one is
configured. `capture` replaces every provider with a CaptureProvider (development).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

import httpx

from tidings.channels.apns import ApnsProvider
from tidings.channels.base import Message, Provider, Receipt
from tidings.channels.capture import CaptureProvider
from tidings.channels.fcm import FcmProvider
from tidings.channels.push import PushRouter
from tidings.channels.smtp import SmtpConfig, SmtpProvider
from tidings.channels.twilio import TwilioProvider
from tidings.channels.webhook import WebhookProvider
from tidings.channels.webhook_http import WebhookClient
from tidings.channels.webhook_signing import new_secret
from tidings.channels.webpush import WebPushProvider
from tidings.channels.webpush_crypto import VapidKeys
from tidings.config import Settings
from tidings.domain.models import Channel

log = logging.getLogger(__name__)

# Channels a provider delivers; in_app has its own worker (pipeline/in_app.py).
PROVIDER_CHANNELS = (Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.WEBHOOK)
WEBHOOK_SECRET = "webhook_secret"  # its name in server_settings
VAPID_PRIVATE_KEY = "vapid_private_key"  # its name in server_settings, when generated

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
    """The provider of each configured channel, and what they share: one HTTP client, and
    one for webhooks and status webhooks.

    That one opens as many connections to a receiver as webhook sends may be in flight (the
    channel's and the status webhooks' together), so no send waits for a connection: a wait
    would count against its timeout, and a slow receiver would then fail sends it never saw."""

    def __init__(self, *, webhook_connections: int = 32) -> None:
        self.by_channel: dict[Channel, Provider] = {}
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"user-agent": "Tidings"},
        )
        self.webhooks = WebhookClient(per_origin=webhook_connections)
        self.clients: list[httpx.AsyncClient] = []  # other clients (APNs' HTTP/2 one)

    async def close(self) -> None:
        for provider in self.by_channel.values():
            try:
                await provider.close()
            except Exception:
                log.exception("closing the %s provider failed", provider.name)
        for client in self.clients:
            await client.aclose()
        await self.http.aclose()
        await self.webhooks.close()


async def vapid_keys(settings: Settings, setting: Setting) -> VapidKeys:
    """TIDINGS_VAPID_PRIVATE_KEY, else a key pair generated once and kept in the store, so
    every process and restart signs with the key browsers subscribed with."""
    if settings.vapid_private_key:
        try:
            return VapidKeys.load(settings.vapid_private_key)
        except (OSError, ValueError) as exc:
            raise ValueError(f"TIDINGS_VAPID_PRIVATE_KEY: {exc}") from None
    pem = await setting(VAPID_PRIVATE_KEY, VapidKeys.generate().to_pem().decode())
    return VapidKeys.from_pem(pem)


def push_providers(
    settings: Settings, providers: Providers, vapid: VapidKeys
) -> dict[str, Provider]:
    """FCM, APNs and Web Push, each when its settings are there; ValueError when half there."""
    found: dict[str, Provider] = {}
    if settings.fcm_credentials:
        try:
            found["fcm"] = FcmProvider.from_settings(
                providers.http, settings.fcm_credentials, settings.fcm_base_url or None
            )
        except ValueError as exc:
            raise ValueError(f"TIDINGS_FCM_CREDENTIALS: {exc}") from None
    if settings.apns_key_file:
        missing = [
            f"TIDINGS_APNS_{name.upper()}"
            for name in ("key_id", "team_id", "topic")
            if not getattr(settings, f"apns_{name}")
        ]
        if missing:
            raise ValueError(f"TIDINGS_APNS_KEY_FILE is set but {', '.join(missing)} is not")
        verify: ssl.SSLContext | bool = True
        if settings.apns_ca_file:
            verify = ssl.create_default_context()
            verify.load_verify_locations(cafile=settings.apns_ca_file)
        client = httpx.AsyncClient(http2=True, verify=verify, headers={"user-agent": "Tidings"})
        providers.clients.append(client)
        try:
            found["apns"] = ApnsProvider.from_settings(
                client,
                key_file=settings.apns_key_file,
                key_id=settings.apns_key_id,
                team_id=settings.apns_team_id,
                topic=settings.apns_topic,
                sandbox=settings.apns_sandbox,
                base_url=settings.apns_base_url or None,
            )
        except ValueError as exc:
            raise ValueError(f"TIDINGS_APNS_KEY_FILE: {exc}") from None
    subject = settings.vapid_subject
    if not subject and settings.effective_public_url.startswith("https:"):
        subject = settings.effective_public_url
    if subject:
        try:
            found["webpush"] = WebPushProvider(
                providers.http, vapid, subject, allow_private=settings.webpush_allow_private
            )
        except ValueError as exc:
            raise ValueError(f"TIDINGS_VAPID_SUBJECT: {exc}") from None
    return found


def twilio_provider(settings: Settings, http: httpx.AsyncClient) -> TwilioProvider | None:
    """SMS through Twilio when TIDINGS_TWILIO_ACCOUNT_SID is set; status callbacks come back
    to /v1/providers/twilio/events on the public URL."""
    if not settings.twilio_account_sid:
        return None
    try:
        return TwilioProvider(
            http,
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from or None,
            messaging_service_sid=settings.twilio_messaging_service_sid or None,
            status_callback_url=f"{settings.effective_public_url}/v1/providers/twilio/events",
            base_url=settings.twilio_base_url,
        )
    except ValueError as exc:
        raise ValueError(f"TIDINGS_TWILIO_ACCOUNT_SID is set, but: {exc}") from None


async def open_providers(
    settings: Settings, setting: Setting, vapid: VapidKeys | None = None
) -> Providers:
    """Build the providers the settings ask for; ValueError for a malformed configuration."""
    # The webhook channel's worker and the status webhooks' each have that many in flight.
    providers = Providers(webhook_connections=2 * settings.concurrency(Channel.WEBHOOK))
    try:
        if settings.capture:
            for channel in PROVIDER_CHANNELS:
                providers.by_channel[channel] = LoggedCapture(channel)
            return providers
        push = push_providers(settings, providers, vapid or await vapid_keys(settings, setting))
        if push:
            providers.by_channel[Channel.PUSH] = PushRouter(push)
        if sms := twilio_provider(settings, providers.http):
            providers.by_channel[Channel.SMS] = sms
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
            providers.webhooks, secret, allow_private=settings.webhook_allow_private
        )
    except BaseException:
        await providers.close()
        raise
    return providers
