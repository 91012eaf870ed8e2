"""Nothing accepted is lost: kill -9 the service right after a burst of 202s, start it again on
the same database, and every accepted notification reaches its user's inbox exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import httpx

from tests.e2e.helpers import eventually, in_app, inbox_items, new_user
from tests.live import LiveService

USERS = 12
BATCHES = 4
BATCH_SIZE = 40
SINGLES = 40


async def burst(service: LiveService, users: list[str]) -> dict[str, list[str]]:
    """POST batches and singles at once; the accepted ids per user."""
    n = 0

    def body() -> dict[str, object]:
        nonlocal n
        n += 1
        return in_app(users[n % len(users)], f"crash {n}")

    batches = [[body() for _ in range(BATCH_SIZE)] for _ in range(BATCHES)]
    singles = [body() for _ in range(SINGLES)]
    accepted: dict[str, list[str]] = defaultdict(list)
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(headers=service.headers(), timeout=30, limits=limits) as client:
        batch_answers = asyncio.gather(
            *(
                client.post(f"{service.url}/v1/notifications/batch", json={"notifications": b})
                for b in batches
            )
        )
        single_answers = asyncio.gather(
            *(client.post(f"{service.url}/v1/notifications", json=s) for s in singles)
        )
        for sent, r in zip(batches, await batch_answers, strict=True):
            assert r.status_code == 202, r.text
            for item, result in zip(sent, r.json()["results"], strict=True):
                assert result["status"] == "accepted", result
                accepted[str(item["user_id"])].append(result["id"])
        for item, r in zip(singles, await single_answers, strict=True):
            assert r.status_code == 202, r.text
            accepted[str(item["user_id"])].append(r.json()["id"])
    return accepted


def test_every_accepted_notification_reaches_the_inbox_once_after_kill_9(
    live_service: LiveService,
) -> None:
    users = [new_user() for _ in range(USERS)]

    accepted = asyncio.run(burst(live_service, users))
    live_service.kill()
    live_service.start()

    assert sum(len(ids) for ids in accepted.values()) == BATCHES * BATCH_SIZE + SINGLES
    with httpx.Client(
        base_url=live_service.url, headers=live_service.headers(), timeout=30
    ) as client:

        def every_inbox_complete() -> bool:
            for user in users:
                stored = [i["notification_id"] for i in inbox_items(client, user)]
                if len(stored) < len(accepted[user]):
                    return False
            return True

        eventually(every_inbox_complete, timeout=60, interval=0.5)

        for user in users:
            stored = [i["notification_id"] for i in inbox_items(client, user)]
            duplicates = [nid for nid, k in Counter(stored).items() if k > 1]
            assert duplicates == [], f"{user} got these twice: {duplicates}"
            assert sorted(stored) == sorted(accepted[user])
