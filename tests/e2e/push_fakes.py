"""The four provider fakes a live service sends push and SMS to, served from one background
event loop: Google's token endpoint + FCM (HTTP), APNs (HTTP/2 over TLS), a push service that
decrypts Web Push with http_ece, and Twilio's Messages API. Plus the credential files and
TIDINGS_* settings that point a service at them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.integration import fake_apns, fake_fcm, fake_twilio
from tests.integration.asgi_server import Certificate, asgi_app, running
from tests.integration.fake_apns import FakeApns
from tests.integration.fake_fcm import FakeGoogle
from tests.integration.fake_push_service import FakePushService
from tests.integration.fake_twilio import FakeTwilio

T = TypeVar("T")


def _pem(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class PushFakes:
    """Started with `start()`, stopped with `stop()`; the fakes' records are read directly."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = Certificate.create(workdir)
        # The services use the wall clock, as a real one does.
        self.google = FakeGoogle(self.rsa_key.public_key(), time.time)  # type: ignore[arg-type]
        self.apns = FakeApns(self.ec_key.public_key(), time.time)  # type: ignore[arg-type]
        self.push_service = FakePushService(vapid_public_key="")  # known once the service runs
        self.twilio = FakeTwilio()
        self.urls: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._served: concurrent.futures.Future[None] | None = None

    def start(self) -> PushFakes:
        self._thread.start()
        ready = threading.Event()
        self._served = asyncio.run_coroutine_threadsafe(self._serve(ready), self._loop)
        while not ready.wait(0.05):
            if self._served.done():
                self._served.result()  # raises what stopped the fakes from starting
        return self

    def stop(self) -> None:
        assert self._stop is not None and self._served is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._served.result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the fakes' loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            google = await stack.enter_async_context(running(asgi_app(self.google.handle)))
            self.google.token_uri = f"{google}/token"
            apns = await stack.enter_async_context(
                running(asgi_app(self.apns.handle), tls=self.certificate)
            )
            await stack.enter_async_context(self.push_service.server)
            await stack.enter_async_context(self.twilio.server)
            self.urls = {"google": google, "apns": apns, "twilio": self.twilio.server.url}
            ready.set()
            await self._stop.wait()

    def settings(self) -> dict[str, str]:
        """The TIDINGS_* variables that send push to these fakes and SMS to fake Twilio."""
        account = {
            "type": "service_account",
            "project_id": fake_fcm.PROJECT,
            "private_key_id": fake_fcm.KEY_ID,
            "private_key": _pem(self.rsa_key).decode(),
            "client_email": fake_fcm.CLIENT_EMAIL,
            "token_uri": self.google.token_uri,
        }
        account_file = self.workdir / "service-account.json"
        account_file.write_text(json.dumps(account))
        key_file = self.workdir / f"AuthKey_{fake_apns.KEY_ID}.p8"
        key_file.write_bytes(_pem(self.ec_key))
        return {
            "TIDINGS_FCM_CREDENTIALS": str(account_file),
            "TIDINGS_FCM_BASE_URL": self.urls["google"],
            "TIDINGS_APNS_KEY_FILE": str(key_file),
            "TIDINGS_APNS_KEY_ID": fake_apns.KEY_ID,
            "TIDINGS_APNS_TEAM_ID": fake_apns.TEAM_ID,
            "TIDINGS_APNS_TOPIC": fake_apns.TOPIC,
            "TIDINGS_APNS_SANDBOX": "1",
            "TIDINGS_APNS_BASE_URL": self.urls["apns"],
            "TIDINGS_APNS_CA_FILE": str(self.certificate.certfile),
            "TIDINGS_VAPID_SUBJECT": "mailto:ops@example.com",
            "TIDINGS_WEBPUSH_ALLOW_PRIVATE": "1",
            "TIDINGS_TWILIO_ACCOUNT_SID": fake_twilio.SID,
            "TIDINGS_TWILIO_AUTH_TOKEN": fake_twilio.TOKEN,
            "TIDINGS_TWILIO_FROM": fake_twilio.FROM,
            "TIDINGS_TWILIO_BASE_URL": self.urls["twilio"],
        }
