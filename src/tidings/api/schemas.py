"""Request and response bodies of the public API (they are also what /openapi.json shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from tidings.api.errors import ApiError

UserId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\s/]+$")]
Category = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
ChannelName = Literal["in_app", "email", "push", "sms", "webhook"]
PriorityName = Literal["high", "normal", "low"]


class SendRequest(Struct, forbid_unknown_fields=True):
    user_id: UserId
    category: Category
    template: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    data: dict[str, Any] = {}
    channels: Annotated[list[ChannelName], Meta(min_length=1)] | None = None
    priority: PriorityName = "normal"
    schedule_at: datetime | None = None
    content: dict[str, Any] | None = None


class SendAnswer(Struct):
    id: str
    status: str
    channels: list[str]


class BatchRequest(Struct, forbid_unknown_fields=True):
    # Items are checked one by one so that one bad item does not reject the others.
    notifications: Annotated[list[Any], Meta(min_length=1)]


class BatchAnswer(Struct):
    results: list[dict[str, Any]]


class DeliveryView(Struct):
    id: str
    channel: str
    provider: str | None
    status: str
    attempts: int
    last_error: str | None
    provider_message_id: str | None
    updated_at: datetime | None


class NotificationView(Struct):
    id: str
    user_id: str
    category: str
    status: str
    priority: str
    created_at: datetime | None
    schedule_at: datetime | None
    deliveries: list[DeliveryView]


class CancelAnswer(Struct):
    id: str
    canceled: int
    notification: NotificationView


class UserBody(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Annotated[str, Meta(max_length=32)] | None = None  # E.164, checked by is_e164
    name: Annotated[str, Meta(max_length=200)] | None = None
    locale: (
        Annotated[str, Meta(max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
        | None
    ) = None
    timezone: Annotated[str, Meta(max_length=64)] | None = None
    data: dict[str, Any] = {}


class UserView(Struct):
    id: str
    email: str | None
    phone: str | None
    name: str | None
    locale: str | None
    timezone: str | None
    data: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None


class TokenAnswer(Struct):
    token: str
    expires_at: datetime


class DeviceBody(Struct, forbid_unknown_fields=True):
    provider: Literal["fcm", "apns", "webpush", "webhook"]
    token: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None
    subscription: dict[str, Any] | None = None


class DeviceView(Struct):
    id: str
    provider: str
    token: str
    active: bool
    last_error: str | None
    created_at: datetime | None
    last_used_at: datetime | None


class DeviceList(Struct):
    devices: list[DeviceView]


class PreferencesBody(Struct, forbid_unknown_fields=True):
    channels: dict[ChannelName, bool] = {}
    categories: dict[Category, dict[ChannelName, bool]] = {}


class InboxItemView(Struct):
    id: str
    notification_id: str
    category: str
    title: str | None
    body: str | None
    action_url: str | None
    data: dict[str, Any]
    created_at: datetime | None
    seen_at: datetime | None
    read_at: datetime | None
    archived_at: datetime | None


class InboxPage(Struct):
    items: list[InboxItemView]
    unread_count: int
    next_cursor: str | None


class InboxCountsView(Struct):
    unread_count: int
    unseen_count: int


class UpdatedAnswer(Struct):
    updated: int


def view(cls: type[Any], value: Any) -> Any:
    """Project a domain dataclass onto a response struct (extra attributes are left out)."""
    return cls(**{name: getattr(value, name) for name in cls.__struct_fields__})


def decode_send(item: Any) -> SendRequest:
    """One batch item as a SendRequest; msgspec.ValidationError says what is wrong."""
    return msgspec.convert(item, SendRequest)


_send_decoder = msgspec.json.Decoder(SendRequest)


def read_send(body: bytes) -> SendRequest:
    """The body of POST /v1/notifications, decoded straight into a SendRequest (Litestar's
    way decodes to dicts, then converts). ApiError 400 `invalid_json` when it is not JSON,
    422 with the details worded as Litestar words them for every other body of the wrong shape."""
    if not body:
        raise ApiError(400, "invalid_json", "the body is empty: send a JSON object")
    try:
        return _send_decoder.decode(body)
    except msgspec.ValidationError as exc:
        wrong = str(exc)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    try:
        # Decoding stopped at the first wrong field: JSON broken further on is still broken.
        msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    message, _, where = wrong.partition(" - at `$.")
    detail = {"message": message, "key": where.removesuffix("`") or "data", "source": "body"}
    raise ApiError(422, "validation_error", "the request does not match the schema", [detail])
