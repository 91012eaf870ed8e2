"""The routing job: what accepting writes for a group of notifications, and what routing reads.

One job per group of notifications accepted together that share a priority and a schedule,
holding at most `IDS_PER_JOB` ids, rather than one per notification: each job is a queue row
written and deleted (embedded), or an outbox row and a broker message published and acked
(scaled out). Jobs written by older versions hold one id each (`{"notification_id": …}`);
routing still reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tidings.domain.models import Notification
from tidings.store.notifications import OutboxJob

ROUTE_QUEUE = "route"
# Ids per job, at most: no more than one routing transaction takes (runtime.BATCH), so a
# job is never more than a batch, and a group of any size still spreads over batches.
IDS_PER_JOB = 200


def route_jobs(
    notifications: Sequence[Notification], *, ids_per_job: int = IDS_PER_JOB
) -> list[OutboxJob]:
    """The routing jobs of notifications accepted in one transaction: one per priority and
    schedule, split into runs of `ids_per_job`, in order of acceptance within each.

    The job's id is its first notification's: unique (ids are never reused) and the same
    whenever the job is written again, so the queue's one-job-per-id keeps it once.
    """
    if ids_per_job < 1:
        raise ValueError("ids_per_job must be at least 1")
    groups: dict[tuple[int, datetime | None], list[str]] = {}
    for notification in notifications:
        key = (notification.priority.rank, notification.schedule_at)
        groups.setdefault(key, []).append(notification.id)
    return [
        OutboxJob(
            queue=ROUTE_QUEUE,
            job_id=f"route:{chunk[0]}",
            payload={"notification_ids": chunk},
            priority=rank,
            available_at=schedule_at,
        )
        for (rank, schedule_at), ids in groups.items()
        for chunk in (ids[i : i + ids_per_job] for i in range(0, len(ids), ids_per_job))
    ]


def notification_ids(payload: dict[str, Any]) -> list[str]:
    """The ids a routing job names, in either shape; a payload of neither is a bug, and raises."""
    if "notification_ids" in payload:
        return list(payload["notification_ids"])
    return [payload["notification_id"]]


def job_size(payload: dict[str, Any]) -> int:
    """How many notifications a routing job names: what a routing batch is bounded by."""
    ids = payload.get("notification_ids")
    return 1 if ids is None else len(ids)


def all_ids(payloads: Iterable[dict[str, Any]]) -> list[str]:
    """Every id the jobs name, once each, in order (a job run twice names its ids twice)."""
    return list(dict.fromkeys(i for payload in payloads for i in notification_ids(payload)))
