"""The command line as an operator uses it next to a running service."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import in_app, new_user
from tests.live import LiveService, run_cli


def test_keys_create_prints_a_key_that_can_send(live_service: LiveService) -> None:
    out = run_cli(["keys", "create", "--scope", "send", "--name", "billing"], live_service.env)
    key = next(line for line in out.splitlines() if line.startswith("tk_"))

    r = httpx.post(
        f"{live_service.url}/v1/notifications",
        json=in_app(new_user(), "from billing"),
        headers=live_service.headers(key),
    )

    assert r.status_code == 202


def test_keys_list_names_the_keys(live_service: LiveService) -> None:
    out = run_cli(["keys", "list"], live_service.env)

    assert "tests" in out
