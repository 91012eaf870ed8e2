"""Email through the live service to a real SMTP server (aiosmtpd): the message as it arrives,
retries while the server is down, a refusal recorded, and the one-click unsubscribe link."""

from __future__ import annotations

import email
import threading
from collections.abc import Iterator
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.e2e.helpers import accepted_id, deliveries, eventually, new_user, settled
from tests.live import LiveService, free_port

SENDER = "Acme <noreply@acme.example>"
SCHEDULE = "200ms,300ms,500ms,1s,1s,2s,5s,10s"


class Mailbox:
    """An aiosmtpd handler keeping what it accepts; recipients starting `reject` get a 550."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = 0
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


def smtp_server(port: int, mailbox: Mailbox) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def email_service(workdir: Path, smtp_port: int) -> LiveService:
    return LiveService(
        workdir,
        extra_env={
            "TIDINGS_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}?timeout=5",
            "TIDINGS_EMAIL_FROM": SENDER,
            "TIDINGS_RETRY_SCHEDULE": SCHEDULE,
        },
    ).start()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.port = free_port()
    controller = smtp_server(box.port, box)
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[LiveService]:
    running = email_service(tmp_path_factory.mktemp("email"), mailbox.port)
    try:
        yield running
    finally:
        running.stop()


def user_with_email(api: httpx.Client, address: str | None = None) -> tuple[str, str]:
    user = new_user()
    address = address or f"{user}@example.com"
    r = api.put(f"/v1/users/{user}", json={"email": address, "name": "Ann"})
    assert r.status_code == 201, r.text
    return user, address


def email_body(user: str, category: str = "orders", **extra: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "category": category,
        "channels": ["email"],
        "content": {
            "title": "Order A-1001 shipped",
            "body": "It is on its way.",
            "email": {"html": "<p>It is on its way.</p>"},
        },
        **extra,
    }


def test_the_rendered_email_arrives_with_both_parts_and_its_headers(api, mailbox):
    user, address = user_with_email(api)
    notification_id = accepted_id(api, email_body(user))

    [message] = eventually(lambda: mailbox.to(address))

    delivery = settled(api, notification_id)["email"]
    assert delivery["status"] == "sent"
    assert delivery["provider"] == "smtp"
    assert message["Subject"] == "Order A-1001 shipped"
    assert message["From"] == SENDER
    assert message["Message-ID"] == f"<{delivery['id']}@tidings.acme.example>"
    assert delivery["provider_message_id"] == message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode().rstrip()
        for part in message.get_payload()
    }
    assert parts == {"text/plain": "It is on its way.", "text/html": "<p>It is on its way.</p>"}
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:")
    assert "/v1/unsubscribe?token=" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_550_fails_the_delivery_with_the_servers_reply(api):
    user, _ = user_with_email(api, f"reject-{new_user()}@example.com")
    notification_id = accepted_id(api, email_body(user))

    delivery = settled(api, notification_id)["email"]

    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1
    assert "550" in delivery["last_error"] and "no such mailbox" in delivery["last_error"]


def unsubscribe_url(message: EmailMessage) -> str:
    return str(message["List-Unsubscribe"]).strip("<>")


def test_the_one_click_unsubscribe_turns_that_categorys_email_off(api, mailbox):
    user, address = user_with_email(api)
    accepted_id(api, email_body(user, category="promo"))
    [message] = eventually(lambda: mailbox.to(address))

    r = httpx.post(
        unsubscribe_url(message),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert r.status_code == 200, r.text
    prefs = api.get(f"/v1/users/{user}/preferences").json()
    assert prefs["categories"]["promo"]["email"] is False
    suppressed = settled(api, accepted_id(api, email_body(user, category="promo")))["email"]
    assert suppressed["status"] == "suppressed"
    other = settled(api, accepted_id(api, email_body(user, category="orders")))["email"]
    assert other["status"] == "sent"


def test_following_the_unsubscribe_link_only_shows_a_confirmation_form(api, mailbox):
    user, address = user_with_email(api)
    accepted_id(api, email_body(user, category="digest"))
    [message] = eventually(lambda: mailbox.to(address))

    r = httpx.get(unsubscribe_url(message), headers={"accept": "text/html"})

    assert r.status_code == 200
    assert '<form method="post"' in r.text
    prefs = api.get(f"/v1/users/{user}/preferences").json()
    assert "digest" not in prefs["categories"]


def test_a_forged_unsubscribe_token_is_refused_and_changes_nothing(api, service, mailbox):
    user, address = user_with_email(api)
    accepted_id(api, email_body(user, category="alerts"))
    [message] = eventually(lambda: mailbox.to(address))
    url = unsubscribe_url(message)
    forged = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")

    answers = [
        httpx.post(forged),
        httpx.post(f"{service.url}/v1/unsubscribe?token=not-a-token"),
        httpx.post(f"{service.url}/v1/unsubscribe"),
    ]

    for r in answers:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_token"
    prefs = api.get(f"/v1/users/{user}/preferences").json()
    assert "alerts" not in prefs["categories"]


def test_an_email_is_retried_while_the_server_is_down_and_sent_when_it_is_back(tmp_path):
    port = free_port()  # nothing listens here yet: connections are refused
    service = email_service(tmp_path, port)
    controller = None
    try:
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as api:
            user, address = user_with_email(api)
            notification_id = accepted_id(api, email_body(user))

            def retried() -> dict[str, Any] | None:
                found = deliveries(api, notification_id).get("email")
                return found if found and found["attempts"] >= 2 else None

            waiting = eventually(retried)
            assert waiting["status"] == "pending"
            assert "cannot connect" in waiting["last_error"]

            mailbox = Mailbox()
            controller = smtp_server(port, mailbox)
            delivery = settled(api, notification_id)["email"]

            assert delivery["status"] == "sent"
            [message] = eventually(lambda: mailbox.to(address))
            assert message["Message-ID"] == f"<{delivery['id']}@tidings.acme.example>"
    finally:
        if controller is not None:
            controller.stop()
        service.stop()
