"""A delivery report: what a provider says became of one message, and how to find its delivery."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.domain.models import Channel, DeliveryStatus

# The statuses a report can give a delivery, each with the status event it emits.
REPORTED = {
    DeliveryStatus.DELIVERED: "delivery.delivered",
    DeliveryStatus.FAILED: "delivery.failed",
    DeliveryStatus.BOUNCED: "delivery.bounced",
}


@dataclass(frozen=True, slots=True)
class Report:
    channel: Channel
    status: DeliveryStatus  # delivered, failed or bounced
    delivery_id: str | None  # the id we sent along with the message, when it came back
    message_ids: tuple[str, ...] = ()  # the provider's ids, tried when delivery_id finds nothing
    error: str | None = None  # why it failed or bounced, for last_error

    def __post_init__(self) -> None:
        if self.status not in REPORTED:
            raise ValueError(f"a report cannot make a delivery {self.status.value}")
