"""One suite over every database the Store runs on: SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidings.domain.ids import new_id
from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    InboxCounts,
    InboxItem,
    Notification,
    NotificationStatus,
    Preferences,
    Scope,
    User,
)
from tidings.store.notifications import IdempotencyClaim, OutboxJob, RoutingPlan
from tidings.store.store import Store


def _notification(user_id: str = "u1") -> Notification:
    return Notification(
        id=new_id(),
        user_id=user_id,
        category="news",
        content={"title": "t"},
        created_at=datetime.now(UTC),
    )


def _job(n: Notification) -> OutboxJob:
    return OutboxJob("route", f"route:{n.id}", {"notification_id": n.id})


def _in_app_plan(n: Notification) -> RoutingPlan:
    delivery = Delivery(
        id=new_id(),
        notification_id=n.id,
        user_id=n.user_id,
        channel=Channel.IN_APP,
        status=DeliveryStatus.DELIVERED,
        attempts=1,
    )
    item = InboxItem(
        id=delivery.id, user_id=n.user_id, notification_id=n.id, category="news", title="t"
    )
    return RoutingPlan(n.id, [(delivery, {"title": "t"})], [], [item])


async def _deliver(store: Store, user_id: str = "u1") -> InboxItem:
    n = _notification(user_id)
    await store.notifications.accept([n], [_job(n)])
    plan = _in_app_plan(n)
    routed = await store.notifications.record_routing([plan])
    assert routed.ids == [n.id] and routed.items == plan.inbox
    return plan.inbox[0]


async def test_accept_creates_a_bare_user_and_an_outbox_job(store: Store):
    n = _notification("newcomer")
    assert await store.notifications.accept([n], [_job(n)]) is None
    assert (await store.users.get("newcomer")) is not None
    jobs = await store.notifications.take_outbox(10)
    assert [j.job_id for j in jobs] == [f"route:{n.id}"]
    await store.notifications.forget_outbox([j.id for j in jobs if j.id])
    assert await store.notifications.take_outbox(10) == []


async def test_idempotency_returns_the_first_answer(store: Store):
    first, second = _notification(), _notification()
    claim = IdempotencyClaim("key1", "k", "hash-a", {"id": first.id})
    assert await store.notifications.accept([first], [_job(first)], idempotency=claim) is None
    replay = await store.notifications.accept(
        [second], [_job(second)], idempotency=IdempotencyClaim("key1", "k", "hash-b", {})
    )
    assert replay is not None and replay.response == {"id": first.id}
    assert replay.request_hash == "hash-a"
    assert await store.notifications.get(second.id) is None


async def test_idempotency_keys_are_per_owner(store: Store):
    a, b = _notification(), _notification()
    await store.notifications.accept(
        [a], [_job(a)], idempotency=IdempotencyClaim("o1", "k", "h", {})
    )
    assert (
        await store.notifications.accept(
            [b], [_job(b)], idempotency=IdempotencyClaim("o2", "k", "h", {})
        )
        is None
    )


async def test_routing_happens_once(store: Store):
    n = _notification()
    await store.notifications.accept([n], [_job(n)])
    d = Delivery(id=new_id(), notification_id=n.id, user_id=n.user_id, channel=Channel.IN_APP)
    first = await store.notifications.record_routing([RoutingPlan(n.id, [(d, {})], [])])
    assert first.ids == [n.id]
    again = Delivery(id=new_id(), notification_id=n.id, user_id=n.user_id, channel=Channel.IN_APP)
    second = await store.notifications.record_routing([RoutingPlan(n.id, [(again, {})], [])])
    assert second.ids == []
    found = await store.notifications.get(n.id)
    assert found is not None
    assert found[0].status is NotificationStatus.ROUTED
    assert [x.id for x in found[1]] == [d.id]


async def test_routing_stores_deliveries_and_items_as_they_were_given(store: Store):
    """Every value a routing batch writes reads back the same (on PostgreSQL it goes by COPY)."""
    n = _notification()
    await store.notifications.accept([n], [_job(n)])
    email = Delivery(
        id=new_id(),
        notification_id=n.id,
        user_id=n.user_id,
        channel=Channel.EMAIL,
        provider="smtp",
        last_error="none yet: ü",
    )
    bare = Delivery(id=new_id(), notification_id=n.id, user_id=n.user_id, channel=Channel.SMS)
    content = {"subject": "Hi ✓", "html": "<p>x</p>", "headers": {"X-A": "1"}}
    plan = _in_app_plan(n)
    in_app, in_app_content = plan.deliveries[0]
    plan.deliveries += [(email, content), (bare, None)]
    item = plan.inbox[0]
    item.title, item.action_url = "Tïtle", "https://example.com/a?b=c"
    item.data = {"nested": {"list": [1, 2.5, None, "ß"]}, "empty": {}}

    routed = await store.notifications.record_routing([plan])

    assert routed.counts == {"u1": InboxCounts(1, 1)}
    stored = await store.notifications.deliveries([email.id, bare.id, in_app.id])
    by_id = {d.id: (d, c) for d, c in stored}
    for given, given_content in ((email, content), (bare, None), (in_app, in_app_content)):
        found, found_content = by_id[given.id]
        assert found_content == given_content
        assert (found.channel, found.provider, found.status, found.attempts, found.last_error) == (
            given.channel,
            given.provider,
            given.status,
            given.attempts,
            given.last_error,
        )
        assert found.updated_at is not None and found.updated_at.tzinfo is not None
    page, _ = await store.inbox.page("u1", limit=10)
    assert len(page) == 1
    assert (page[0].id, page[0].title, page[0].body, page[0].action_url, page[0].data) == (
        item.id,
        item.title,
        item.body,
        item.action_url,
        item.data,
    )
    assert page[0].created_at is not None and page[0].created_at.tzinfo is not None


async def test_cancel_before_routing_stops_routing(store: Store):
    n = _notification()
    await store.notifications.accept([n], [_job(n)])
    assert await store.notifications.cancel(n.id) == 0
    d = Delivery(id=new_id(), notification_id=n.id, user_id=n.user_id, channel=Channel.IN_APP)
    assert (await store.notifications.record_routing([RoutingPlan(n.id, [(d, {})], [])])).ids == []
    assert await store.notifications.cancel("nope") is None


async def test_routing_twice_stores_one_item(store: Store):
    item = await _deliver(store)
    found = await store.notifications.get(item.notification_id)
    assert found is not None
    routed = await store.notifications.record_routing([_in_app_plan(found[0])])
    assert routed.ids == [] and routed.items == [] and routed.counts == {}
    assert await store.inbox.counts("u1") == InboxCounts(1, 1)


async def test_a_batch_delivers_to_many_users_and_counts_each(store: Store):
    for user in ("a", "b", "a"):
        await _deliver(store, user)
    assert await store.inbox.counts("a") == InboxCounts(2, 2)
    assert await store.inbox.counts("b") == InboxCounts(1, 1)


async def test_counts_follow_every_action_exactly(store: Store):
    a = await _deliver(store)
    b = await _deliver(store)
    c = await _deliver(store)
    expectations = [
        (a.id, "seen", (3, 2)),
        (a.id, "seen", (3, 2)),  # twice changes nothing
        (a.id, "read", (2, 2)),
        (b.id, "read", (1, 1)),  # reading marks seen too
        (b.id, "unread", (2, 1)),
        (c.id, "archive", (1, 0)),  # archived items are not counted
        (c.id, "read", (1, 0)),
    ]
    for item_id, action, (unread, unseen) in expectations:
        done = await store.inbox.mark("u1", item_id, action)
        assert done is not None
        counts = done[1]
        assert (counts.unread_count, counts.unseen_count) == (unread, unseen), (item_id, action)
    updated, counts = await store.inbox.read_all("u1")
    assert updated == 1
    assert (counts.unread_count, counts.unseen_count) == (0, 0)


async def test_inbox_pages_newest_first_without_gaps(store: Store):
    made = [(await _deliver(store)).id for _ in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        items, _ = await store.inbox.page("u1", limit=3, before=cursor)
        if not items:
            break
        seen += [i.id for i in items]
        cursor = items[-1].id
    assert seen == list(reversed(made))


async def test_replay_returns_items_after_an_id_oldest_first(store: Store):
    made = [(await _deliver(store)).id for _ in range(5)]
    assert [i.id for i in await store.inbox.after("u1", made[1])] == made[2:]


async def test_another_users_item_cannot_be_marked(store: Store):
    item = await _deliver(store, "owner")
    assert await store.inbox.mark("intruder", item.id, "read") is None


async def test_erase_removes_everything_of_the_user(store: Store):
    await _deliver(store, "gone")
    await store.users.set_preferences("gone", Preferences(channels={"email": False}))
    assert await store.users.erase("gone")
    assert await store.users.get("gone") is None
    items, counts = await store.inbox.page("gone", limit=10)
    assert items == [] and counts.unread_count == 0


async def test_user_upsert_reports_creation(store: Store):
    _, created = await store.users.upsert(User(id="p", email="p@x.io"))
    updated, created_again = await store.users.upsert(User(id="p", name="P"))
    assert created and not created_again
    assert (updated.email, updated.name) == (None, "P")  # PUT replaces the profile


async def test_keys_authenticate_until_revoked(store: Store):
    key, raw = await store.keys.create(Scope.SEND, "billing")
    found = await store.keys.authenticate(raw)
    assert found is not None and found.scope is Scope.SEND
    assert await store.keys.revoke(key.id)
    assert await store.keys.authenticate(raw) is None
    assert not await store.keys.revoke(key.id)


async def test_setting_is_stored_once(store: Store):
    assert await store.keys.setting("secret", "first") == "first"
    assert await store.keys.setting("secret", "second") == "first"


async def test_old_idempotency_records_are_forgotten(store: Store):
    n = _notification()
    await store.notifications.accept(
        [n], [_job(n)], idempotency=IdempotencyClaim("o", "k", "h", {})
    )
    assert (
        await store.notifications.forget_idempotency_before(
            datetime.now(UTC) + timedelta(seconds=1)
        )
        == 1
    )
