"""TemplateStore over every database the Store runs on: versions, the active one, activation."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from tidings.domain.templates import TemplateError
from tidings.store.store import Store

BODY: dict[str, Any] = {
    "category": "order_shipped",
    "critical": False,
    "locales": {
        "en": {"in_app": {"title": "Order {{ order_id }} shipped", "body": "On its way"}},
        "pt": {"in_app": {"title": "Pedido {{ order_id }} enviado"}},
    },
    "default_locale": "en",
}


def _titled(title: str, **extra: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    body["locales"]["en"]["in_app"]["title"] = title
    body.update(extra)
    return body


async def test_first_upload_is_version_one_and_active(store: Store) -> None:
    stored = await store.templates.put("shipped", BODY)
    assert stored.version == 1 and stored.created_at is not None
    active = await store.templates.active("shipped")
    assert active is not None
    assert (active.version, active.category, active.critical) == (1, "order_shipped", False)
    assert active.locales == BODY["locales"] and active.default_locale == "en"


async def test_each_upload_is_the_next_version_and_the_only_active_one(store: Store) -> None:
    await store.templates.put("shipped", _titled("one"))
    second = await store.templates.put("shipped", _titled("two", critical=True))
    assert second.version == 2 and second.critical
    versions = await store.templates.versions("shipped")
    assert [(v.version, active) for v, active in versions] == [(1, False), (2, True)]
    active = await store.templates.active("shipped")
    assert active is not None and active.locales["en"]["in_app"]["title"] == "two"


async def test_activating_an_older_version_rolls_back(store: Store) -> None:
    await store.templates.put("shipped", _titled("one"))
    await store.templates.put("shipped", _titled("two"))
    assert await store.templates.activate("shipped", 1)
    active = await store.templates.active("shipped")
    assert active is not None and active.version == 1
    versions = await store.templates.versions("shipped")
    assert [active for _, active in versions] == [True, False]


async def test_activating_a_missing_version_changes_nothing(store: Store) -> None:
    await store.templates.put("shipped", BODY)
    assert not await store.templates.activate("shipped", 7)
    assert not await store.templates.activate("nothing", 1)
    active = await store.templates.active("shipped")
    assert active is not None and active.version == 1


async def test_a_new_upload_after_a_rollback_is_still_the_next_number(store: Store) -> None:
    await store.templates.put("shipped", _titled("one"))
    await store.templates.put("shipped", _titled("two"))
    await store.templates.activate("shipped", 1)
    third = await store.templates.put("shipped", _titled("three"))
    assert third.version == 3
    versions = await store.templates.versions("shipped")
    assert [(v.version, active) for v, active in versions] == [(1, False), (2, False), (3, True)]


async def test_active_many_answers_the_keys_that_exist(store: Store) -> None:
    await store.templates.put("a", _titled("a"))
    await store.templates.put("b", _titled("b1"))
    await store.templates.put("b", _titled("b2"))
    found = await store.templates.active_many(["a", "b", "missing", "a"])
    assert {k: v.version for k, v in found.items()} == {"a": 1, "b": 2}
    assert await store.templates.active_many([]) == {}
    assert await store.templates.active("missing") is None


async def test_versions_of_one_key_are_its_own(store: Store) -> None:
    await store.templates.put("a", BODY)
    await store.templates.put("b", BODY)
    assert [v.key for v, _ in await store.templates.versions("a")] == ["a"]
    assert await store.templates.versions("missing") == []


async def test_an_invalid_body_is_refused_and_stores_nothing(store: Store) -> None:
    with pytest.raises(TemplateError) as refused:
        await store.templates.put("shipped", {"category": "", "locales": {}})
    assert len(refused.value.problems) >= 3
    assert await store.templates.versions("shipped") == []


async def test_concurrent_uploads_get_distinct_versions_and_one_stays_active(
    store: Store,
) -> None:
    stored = await asyncio.gather(
        *(store.templates.put("busy", _titled(f"t{n}")) for n in range(6))
    )
    assert sorted(v.version for v in stored) == [1, 2, 3, 4, 5, 6]
    versions = await store.templates.versions("busy")
    assert [v.version for v, active in versions if active] == [6]
