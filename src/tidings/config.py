"""Settings: every knob is an environment variable prefixed TIDINGS_ (or a line in ./.env)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tidings.domain.models import Channel
from tidings.domain.retry import DEFAULT_SCHEDULE, RetryPolicy, policy_for

# Providers whose sends TIDINGS_<PROVIDER>_RATE may limit (read from `extra`, see provider_rates).
RATE_LIMITED_PROVIDERS = ("smtp", "twilio", "fcm", "apns", "webpush", "webhook", "capture")

SECRET_FIELDS = frozenset(
    {"subscriber_secret", "smtp_url", "twilio_auth_token", "vapid_private_key", "api_key"}
)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./tidings.db"
    queue_url: str = ""  # empty: the embedded queue in the database file (sqlite only)
    bus_url: str = "memory://"
    # Names RabbitMQ queues (<namespace>.route.high, …) and Redis channels (<namespace>:user.…),
    # so deployments (or test runs) sharing a broker or a Redis server stay apart.
    namespace: str = "tidings"
    # Seconds a stopping process (SIGTERM) gives work in flight to finish; the rest goes back.
    shutdown_grace: float = 10.0
    host: str = "127.0.0.1"
    port: int = 8000
    metrics_port: int = 0  # `tidings worker` serves GET /metrics here (on host); 0: it does not
    api_key: str = ""  # the server key `tidings send` posts with (the service never reads it)
    public_url: str = ""  # how users reach this server (links in emails); default http://host:port
    subscriber_secret: str = ""  # empty: generated once and kept in the database
    subscriber_token_ttl: int = 3600  # seconds, for tokens minted by POST /v1/users/{id}/token
    heartbeat_seconds: float = 15.0
    max_body_bytes: int = 1024 * 1024
    batch_limit: int = 1000
    log_level: str = "info"
    # The /demo page mints subscriber tokens for anyone: off unless asked for (make serve does).
    demo: bool = False
    smtp_url: str = ""  # smtp[s]://user:pass@host:port?starttls=…: turns the email channel on
    email_from: str = ""  # the From header of every email, e.g. "Acme <noreply@acme.example>"
    # SendGrid's Event Webhook verification key (base64 DER, as its console shows it): turns on
    # POST /v1/providers/sendgrid/events. Twilio's reports are checked with twilio_auth_token.
    sendgrid_webhook_public_key: str = ""
    webhook_allow_private: bool = False  # let webhooks reach loopback and private networks
    # Every provider channel records instead of sending (`tidings serve --capture`): development.
    capture: bool = False
    # `tidings serve` routes and delivers in a second process on the same database, so it
    # uses two cores (tidings/delivery_process.py). Other roles ignore it.
    delivery_process: bool = False
    # Delays before each retry of a failed send; TIDINGS_RETRY_SCHEDULE_<CHANNEL> overrides one
    # channel (read from `extra`, see retry_overrides).
    retry_schedule: str = DEFAULT_SCHEDULE
    # Sends in flight per channel, each its own worker pool so a slow provider holds no other.
    email_concurrency: int = 8
    push_concurrency: int = 8
    sms_concurrency: int = 8
    # More in flight share more of each read and transaction: webhook-drain spent 394 µs of
    # CPU a delivery at 32, 253 at 128 (docs/benchmarks.md).
    webhook_concurrency: int = 128
    # Push providers: each is on once its credentials are set (see channels/registry.py).
    fcm_credentials: str = ""  # path of the service-account JSON key file
    fcm_base_url: str = ""  # empty: https://fcm.googleapis.com
    apns_key_file: str = ""  # path of the AuthKey_<key id>.p8 file
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""  # the app's bundle id
    apns_sandbox: bool = False
    apns_base_url: str = ""  # empty: Apple's production or sandbox host
    apns_ca_file: str = ""  # extra CA bundle to trust for APNs (tests, TLS-inspecting proxies)
    vapid_private_key: str = ""  # PEM or a PEM file's path; empty: generated once and stored
    vapid_subject: str = ""  # mailto: or https: contact sent to push services (RFC 8292)
    webpush_allow_private: bool = False  # let push endpoints be http:// or private addresses
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""  # an E.164 sender number, or:
    twilio_messaging_service_sid: str = ""  # a Messaging Service (wins over twilio_from)
    twilio_base_url: str = "https://api.twilio.com"
    # Rate limits and breakers (limits/). Buckets live in TIDINGS_LIMITS_URL; empty: the bus's
    # Redis when the bus is Redis (shared by every process), else this process's memory.
    limits_url: str = ""
    # Requests per second per server key, and per subscriber (user) with a subscriber token;
    # 0 turns the limit off. A caller may burst to rate_limit_burst requests (0: two seconds'
    # worth of its rate).
    rate_limit: float = 100.0
    subscriber_rate_limit: float = 20.0
    rate_limit_burst: int = 0
    # A provider's breaker opens after this many transient failures in a row, for this long.
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    extra: dict[str, str] = field(default_factory=dict)  # unrecognised TIDINGS_* variables

    @property
    def effective_queue_url(self) -> str:
        if self.queue_url:
            return self.queue_url
        if self.database_url.startswith("sqlite:"):
            return self.database_url
        raise ValueError("TIDINGS_QUEUE_URL is required when the database is not SQLite")

    @property
    def effective_public_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def retry_overrides(self) -> dict[str, str]:
        """Per-channel schedules from TIDINGS_RETRY_SCHEDULE_<CHANNEL>, keyed by channel name."""
        prefix = "TIDINGS_RETRY_SCHEDULE_"
        return {
            key.removeprefix(prefix).lower(): value
            for key, value in self.extra.items()
            if key.startswith(prefix)
        }

    def retry_policy(self, channel: Channel | str) -> RetryPolicy:
        """The retry policy of one channel; ValueError naming the channel when it is malformed."""
        return policy_for(channel, self.retry_schedule, self.retry_overrides)

    @property
    def provider_rates(self) -> dict[str, float]:
        """Sends per second by provider, from TIDINGS_<PROVIDER>_RATE (absent: unlimited)."""
        rates = {}
        for key, value in self.extra.items():
            name = key.removeprefix("TIDINGS_").removesuffix("_RATE").lower()
            if key.startswith("TIDINGS_") and key.endswith("_RATE"):
                rates[name] = float(value)
        return rates

    def concurrency(self, channel: Channel | str) -> int:
        return int(getattr(self, f"{Channel(channel).value}_concurrency", 8))

    def masked(self) -> dict[str, Any]:
        """The settings as `tidings config` prints them: secrets replaced by ***."""
        shown: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            shown[f.name] = value
        return shown


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; optional quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _convert(name: str, kind: Any, raw: str) -> Any:
    try:
        if kind in (bool, "bool"):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"TIDINGS_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def load_settings(
    environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Settings from ./.env overlaid by the process environment (the environment wins)."""
    source: dict[str, str] = read_dotenv(dotenv) if dotenv else {}
    source.update(os.environ if environ is None else environ)
    known = {f.name: f for f in fields(Settings) if f.name != "extra"}
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, raw in source.items():
        if not key.startswith("TIDINGS_"):
            continue
        name = key.removeprefix("TIDINGS_").lower()
        if name in known:
            values[name] = _convert(name, known[name].type, raw)
        else:
            extra[key] = raw
    settings = Settings(**values, extra=extra)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """Refuse at load what would otherwise fail later, deep in a worker."""
    for name in settings.retry_overrides:
        if name not in {c.value for c in Channel}:
            known = ", ".join(c.value.upper() for c in Channel)
            raise ValueError(
                f"TIDINGS_RETRY_SCHEDULE_{name.upper()}: no such channel (one of {known})"
            )
    for channel in Channel:
        try:
            settings.retry_policy(channel)
        except ValueError as exc:
            raise ValueError(f"TIDINGS_RETRY_SCHEDULE: {exc}") from None
        if settings.concurrency(channel) < 1:
            raise ValueError(f"TIDINGS_{channel.value.upper()}_CONCURRENCY must be at least 1")
    for key, value in settings.extra.items():
        if not (key.startswith("TIDINGS_") and key.endswith("_RATE")):
            continue
        name = key.removeprefix("TIDINGS_").removesuffix("_RATE").lower()
        if name not in RATE_LIMITED_PROVIDERS:
            known = ", ".join(p.upper() for p in RATE_LIMITED_PROVIDERS)
            raise ValueError(f"{key}: no such provider (one of {known})")
        try:
            if float(value) < 0:
                raise ValueError(value)
        except ValueError:
            raise ValueError(f"{key}={value!r} must be sends per second, 0 or more") from None
    if settings.delivery_process and settings.queue_url.startswith("memory:"):
        raise ValueError(
            "TIDINGS_DELIVERY_PROCESS needs a queue both processes reach: the memory queue "
            "is one process's own (leave TIDINGS_QUEUE_URL empty for the embedded queue)"
        )
    if settings.breaker_failures < 1:
        raise ValueError("TIDINGS_BREAKER_FAILURES must be at least 1")
    if min(settings.rate_limit, settings.subscriber_rate_limit, settings.rate_limit_burst) < 0:
        raise ValueError(
            "TIDINGS_RATE_LIMIT, TIDINGS_SUBSCRIBER_RATE_LIMIT and TIDINGS_RATE_LIMIT_BURST "
            "must be 0 or more"
        )
    if settings.sendgrid_webhook_public_key:
        from tidings.channels.sendgrid_events import load_public_key

        try:
            load_public_key(settings.sendgrid_webhook_public_key)
        except ValueError as exc:
            raise ValueError(f"TIDINGS_SENDGRID_WEBHOOK_PUBLIC_KEY: {exc}") from None


def replace(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)
