"""The <tidings-inbox> element in Chromium against the real service: a notification arrives live,
and reading it clears the badge in the page and on the server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.live import LiveService
from tests.services import chromium_path

pytestmark = pytest.mark.browser

# Debian's Chromium, headless, with nothing that phones home or needs a GPU or sandbox.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USER = "u_browser"


@pytest.fixture
def page() -> Iterator[Page]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()
        assert not errors, f"JavaScript errors in the page: {errors}"


def test_a_notification_arrives_live_and_reading_it_clears_the_badge(
    live_service: LiveService, page: Page
) -> None:
    page.goto(f"{live_service.url}/demo?user={USER}")
    inbox = page.locator("tidings-inbox")
    # Send only once the stream is open, so the item can only have come over it.
    expect(inbox).to_have_attribute("data-stream", "open")
    badge = page.locator('[data-testid="badge"]')
    expect(badge).to_be_hidden()

    sent = httpx.post(
        f"{live_service.url}/v1/notifications",
        headers=live_service.headers(),
        json={
            "user_id": USER,
            "category": "test",
            "channels": ["in_app"],
            "content": {"title": "Hello", "body": "World"},
        },
    )
    assert sent.status_code == 202, sent.text

    item = page.locator('[data-testid="item"]')
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-read", "false")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("1")
    expect(page.locator('[data-testid="bell"]')).to_have_attribute(
        "aria-label", "Notifications, 1 unread"
    )

    page.locator('[data-testid="bell"]').click()
    expect(item).to_contain_text("Hello")
    expect(item).to_contain_text("World")
    item.click()

    expect(item).to_have_attribute("data-read", "true")
    expect(badge).to_be_hidden()
    counts = httpx.get(
        f"{live_service.url}/v1/users/{USER}/inbox/count", headers=live_service.headers()
    )
    assert counts.status_code == 200, counts.text
    assert counts.json()["unread_count"] == 0
