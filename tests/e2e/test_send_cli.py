"""`tidings send` against the live service, as an operator types it: what it sends, what it
prints, and how it fails."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx

from tests.e2e.helpers import items_of, new_user, settled
from tests.live import TIDINGS, LiveService, free_port


def tidings_send(
    service: LiveService, *args: str, key: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`tidings send ARGS` with the service's settings (so TIDINGS_HOST/PORT point at it)."""
    environ = service.env | {"TIDINGS_HOST": "127.0.0.1", "TIDINGS_PORT": str(service.port)}
    environ.pop("TIDINGS_API_KEY", None)
    environ |= env
    command = [TIDINGS, "send", *args] + (["--key", key] if key else [])
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)


def sent_ids(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_send_prints_the_id_of_a_notification_that_reaches_the_inbox(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    user = new_user()

    done = tidings_send(
        service,
        *("--user", user, "--category", "ops", "--channel", "in_app"),
        *("--title", "Deploy done", "--body", "v1.2 is live", "--priority", "high"),
        key=keys["send"],
    )

    [notification_id] = sent_ids(done)
    assert settled(api, notification_id)["in_app"]["status"] == "delivered"
    [item] = items_of(api, user)
    assert (item["notification_id"], item["title"], item["body"]) == (
        notification_id,
        "Deploy done",
        "v1.2 is live",
    )
    assert api.get(f"/v1/notifications/{notification_id}").json()["priority"] == "high"


def test_the_key_and_the_url_come_from_the_environment(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    user = new_user()

    done = tidings_send(
        service, "--user", user, "--category", "ops", "--title", "Hi", TIDINGS_API_KEY=keys["send"]
    )

    [notification_id] = sent_ids(done)
    assert api.get(f"/v1/notifications/{notification_id}").json()["user_id"] == user


def test_several_users_get_one_notification_each_printed_in_order(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    users = [new_user() for _ in range(3)]

    done = tidings_send(
        service,
        *("--user", users[0], "--user", f"{users[1]},{users[2]}"),
        *("--category", "ops", "--channel", "in_app,email", "--title", "To all"),
        key=keys["send"],
    )

    ids = sent_ids(done)
    assert [api.get(f"/v1/notifications/{i}").json()["user_id"] for i in ids] == users
    channels = {d["channel"] for d in settled(api, ids[0]).values()}
    assert channels == {"in_app", "email"}


def test_a_template_is_rendered_with_the_data_given(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    template: dict[str, Any] = {
        "category": "orders",
        "locales": {
            "en": {"in_app": {"title": "Order {{ order_id }}", "body": "by {{ carrier }}"}}
        },
        "default_locale": "en",
    }
    assert api.put("/v1/templates/cli_order", json=template).status_code == 201
    user = new_user()

    done = tidings_send(
        service,
        *("--user", user, "--category", "orders", "--template", "cli_order"),
        *("--data", '{"order_id": "A-7", "carrier": "UPS"}'),
        key=keys["send"],
    )

    [notification_id] = sent_ids(done)
    settled(api, notification_id)
    assert [(i["title"], i["body"]) for i in items_of(api, user)] == [("Order A-7", "by UPS")]


def test_the_same_idempotency_key_sends_once(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    user = new_user()
    args = ("--user", user, "--category", "ops", "--title", "Once", "--idempotency-key", user)

    first = sent_ids(tidings_send(service, *args, key=keys["send"]))
    again = sent_ids(tidings_send(service, *args, key=keys["send"]))

    assert first == again
    settled(api, first[0])
    assert len(items_of(api, user)) == 1


def test_an_unreachable_service_is_named_with_a_hint_to_start_it(service: LiveService) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    done = tidings_send(
        service,
        "--user",
        new_user(),
        "--category",
        "ops",
        "--title",
        "x",
        "--url",
        nowhere,
        key="tk_whatever",
    )

    assert done.returncode == 1
    assert nowhere in done.stderr
    assert "tidings serve" in done.stderr
    assert done.stdout == ""


def test_the_apis_refusal_is_printed_and_the_exit_code_is_not_zero(
    service: LiveService, keys: dict[str, str]
) -> None:
    no_words = tidings_send(service, "--user", new_user(), "--category", "ops", key=keys["send"])
    bad_key = tidings_send(service, "--user", new_user(), "--category", "ops", key="tk_nope")
    read_only = tidings_send(
        service, "--user", new_user(), "--category", "ops", "--title", "x", key=keys["read"]
    )

    assert no_words.returncode == 1
    assert "422 validation_error: give either template or content" in no_words.stderr
    assert bad_key.returncode == 1
    assert "401 unauthorized" in bad_key.stderr and "TIDINGS_API_KEY" in bad_key.stderr
    assert read_only.returncode == 1
    assert "403 forbidden" in read_only.stderr


def test_one_refused_user_of_several_fails_the_command_but_not_the_others(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    good = new_user()

    done = tidings_send(
        service,
        "--user",
        f"{good},bad/user",
        "--category",
        "ops",
        "--title",
        "x",
        key=keys["send"],
    )

    assert done.returncode == 1
    assert "user bad/user: validation_error" in done.stderr
    [notification_id] = done.stdout.split()
    assert api.get(f"/v1/notifications/{notification_id}").json()["user_id"] == good


def test_usage_mistakes_exit_2_before_anything_is_sent(service: LiveService) -> None:
    user = new_user()
    no_key = tidings_send(service, "--user", user, "--category", "ops", "--title", "x")
    not_json = tidings_send(
        service, "--user", user, "--category", "ops", "--data", "{oops", key="tk_x"
    )
    two_users_one_key = tidings_send(
        service,
        "--user",
        f"{user},u2",
        "--category",
        "ops",
        "--idempotency-key",
        "k",
        key="tk_x",
    )

    assert no_key.returncode == 2 and "TIDINGS_API_KEY" in no_key.stderr
    assert not_json.returncode == 2 and "--data" in not_json.stderr
    assert two_users_one_key.returncode == 2 and "--idempotency-key" in two_users_one_key.stderr
    admin = httpx.get(f"{service.url}/v1/users/{user}", headers=service.headers())
    assert admin.status_code == 404  # never created: nothing was sent for it
