"""The hook for delivery status events, called inside the transaction that records an outcome.

Status-webhook subscriptions (POST /v1/webhooks) plug in here: given the transaction's
connection, they write one job per subscribed endpoint in that same transaction, so an event
is never lost between the outcome and its webhook. Until then the default does nothing.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from sqlalchemy import Connection

DeliveryEvent = Literal[
    "delivery.sent",
    "delivery.failed",
    "delivery.dead",
    "delivery.delivered",  # from provider feedback (store/feedback.py)
    "delivery.bounced",
]


class StatusEvents(Protocol):
    def __call__(self, conn: Connection, event: DeliveryEvent, delivery: dict[str, Any]) -> None:
        """`delivery` is the delivery as GET /v1/notifications/{id} shows it, plus its ids."""
        ...


def no_status_events(conn: Connection, event: DeliveryEvent, delivery: dict[str, Any]) -> None:
    """The default: nobody subscribes yet."""
