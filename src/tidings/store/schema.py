"""The tables. Alembic migrations create them; this module is the single description of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def sqlite_utc(text: str | None) -> datetime | None:
    """A UtcDateTime as SQLite keeps it (UTC without a zone, '2026-11-21 05:00:00.000000'),
    read: a fifth of the cost of SQLAlchemy's parse followed by `replace(tzinfo=UTC)`."""
    return None if text is None else datetime.fromisoformat(text + "+00:00")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps no zone, so normalise on the way)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return sqlite_utc
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    sa.Column("last_used_at", UtcDateTime),
)

server_settings = sa.Table(
    "server_settings",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(32)),
    sa.Column("name", sa.String(200)),
    sa.Column("locale", sa.String(35)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("data", Json, nullable=False),
    sa.Column("preferences", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("subscription", Json),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime),
    sa.UniqueConstraint("user_id", "provider", "token", name="uq_devices_user_provider_token"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("category", sa.String(200), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("template", sa.String(200)),
    sa.Column("data", Json, nullable=False),
    sa.Column("content", Json),
    sa.Column("channels", Json),
    sa.Column("schedule_at", UtcDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# One row per (server key, Idempotency-Key): the first answer, replayed for 24 h.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("owner", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("response", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
)

# Work committed with the data it concerns and relayed to the queue afterwards, so a crash
# between commit and publish loses nothing.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("job_id", sa.String(100), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("available_at", UtcDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("notification_id", sa.String(32), nullable=False, index=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("provider_message_id", sa.String(255)),
    sa.Column("content", Json),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Dead letters are read by status, newest first; delivery reports find a delivery by the
    # provider's message id. Without these both scan the table.
    sa.Index("ix_deliveries_status_id", "status", "id"),
    sa.Index("ix_deliveries_provider_message_id", "provider_message_id"),
    # GET /v1/stats counts a time window by channel and status from this index alone.
    sa.Index("ix_deliveries_created_at_channel_status", "created_at", "channel", "status"),
)

# The inbox item shares its id with the in_app delivery that made it: redelivery is a no-op.
inbox_items = sa.Table(
    "inbox_items",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("notification_id", sa.String(32), nullable=False),
    sa.Column("category", sa.String(200), nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("body", sa.Text),
    sa.Column("action_url", sa.Text),
    sa.Column("data", Json, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("seen_at", UtcDateTime),
    sa.Column("read_at", UtcDateTime),
    sa.Column("archived_at", UtcDateTime),
    sa.Index("ix_inbox_items_user_id_id", "user_id", "id"),
)

# Kept exact on every change so a count never scans the inbox. Archived items are not counted.
inbox_counters = sa.Table(
    "inbox_counters",
    metadata,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("unread_count", sa.Integer, nullable=False),
    sa.Column("unseen_count", sa.Integer, nullable=False),
)

# One row per version; exactly one version of a key is active.
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("category", sa.String(200), nullable=False),
    sa.Column("critical", sa.Boolean, nullable=False),
    sa.Column("default_locale", sa.String(35), nullable=False),
    sa.Column("locales", Json, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# Every try of a delivery through a provider: when, how long, and how it ended.
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(32), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(32)),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # sent, transient, permanent
    sa.Column("error", sa.Text),
    sa.Column("device_id", sa.String(32)),  # push: one row per device tried
    sa.Column("provider_message_id", sa.String(255)),
)

# Status webhooks: where to post delivery.* and inbox.* events, signed with `secret`.
webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", Json, nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
