"""Routing jobs: one per group of notifications accepted together that share a priority and a
schedule, at most IDS_PER_JOB ids each; routing reads them and the one-id jobs of older
versions alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidings.domain.ids import new_id
from tidings.domain.models import Notification, Priority
from tidings.pipeline.route_jobs import (
    IDS_PER_JOB,
    ROUTE_QUEUE,
    all_ids,
    job_size,
    notification_ids,
    route_jobs,
)

LATER = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _made(
    count: int, priority: Priority = Priority.NORMAL, schedule_at: datetime | None = None
) -> list[Notification]:
    return [
        Notification(new_id(), "u1", "news", priority=priority, schedule_at=schedule_at)
        for _ in range(count)
    ]


def test_a_group_of_one_priority_and_no_schedule_is_one_job() -> None:
    group = _made(3)

    [job] = route_jobs(group)

    assert job.queue == ROUTE_QUEUE
    assert job.payload == {"notification_ids": [n.id for n in group]}
    assert job.job_id == f"route:{group[0].id}"
    assert (job.priority, job.available_at) == (Priority.NORMAL.rank, None)


def test_a_large_group_is_split_into_jobs_of_at_most_ids_per_job() -> None:
    group = _made(2 * IDS_PER_JOB + 50)

    jobs = route_jobs(group)

    assert [len(j.payload["notification_ids"]) for j in jobs] == [IDS_PER_JOB, IDS_PER_JOB, 50]
    assert [i for j in jobs for i in j.payload["notification_ids"]] == [n.id for n in group]
    assert [j.job_id for j in jobs] == [
        f"route:{group[0].id}",
        f"route:{group[IDS_PER_JOB].id}",
        f"route:{group[2 * IDS_PER_JOB].id}",
    ]


def test_each_priority_and_each_schedule_gets_its_own_job() -> None:
    normal = _made(2)
    high = _made(1, priority=Priority.HIGH)
    low_later = _made(2, priority=Priority.LOW, schedule_at=LATER)
    normal_later = _made(1, schedule_at=LATER)
    normal_even_later = _made(1, schedule_at=LATER + timedelta(seconds=1))
    group = [normal[0], high[0], low_later[0], normal_later[0], normal[1], low_later[1]]
    group += normal_even_later

    jobs = {j.job_id: j for j in route_jobs(group)}

    def job_of(first: Notification) -> tuple[list[str], int, datetime | None]:
        job = jobs[f"route:{first.id}"]
        return job.payload["notification_ids"], job.priority, job.available_at

    assert len(jobs) == 5
    assert job_of(normal[0]) == ([n.id for n in normal], Priority.NORMAL.rank, None)
    assert job_of(high[0]) == ([high[0].id], Priority.HIGH.rank, None)
    assert job_of(low_later[0]) == ([n.id for n in low_later], Priority.LOW.rank, LATER)
    assert job_of(normal_later[0]) == ([normal_later[0].id], Priority.NORMAL.rank, LATER)
    assert job_of(normal_even_later[0])[2] == LATER + timedelta(seconds=1)


def test_the_same_group_makes_the_same_jobs_so_a_rewrite_is_kept_once() -> None:
    group = _made(IDS_PER_JOB + 1)

    assert route_jobs(group) == route_jobs(group)


def test_nothing_accepted_makes_no_job() -> None:
    assert route_jobs([]) == []


def test_ids_per_job_must_be_positive() -> None:
    with pytest.raises(ValueError):
        route_jobs(_made(1), ids_per_job=0)


def test_routing_reads_a_grouped_job_and_a_job_of_an_older_version() -> None:
    assert notification_ids({"notification_ids": ["a", "b"]}) == ["a", "b"]
    assert notification_ids({"notification_id": "a"}) == ["a"]


def test_a_payload_of_neither_shape_is_refused() -> None:
    with pytest.raises(KeyError):
        notification_ids({"id": "a"})


def test_a_job_weighs_the_notifications_it_names() -> None:
    assert job_size({"notification_ids": ["a", "b", "c"]}) == 3
    assert job_size({"notification_id": "a"}) == 1


def test_ids_named_twice_are_routed_once_in_order() -> None:
    payloads = [
        {"notification_ids": ["a", "b"]},
        {"notification_id": "c"},
        {"notification_id": "a"},
    ]

    assert all_ids(payloads) == ["a", "b", "c"]
