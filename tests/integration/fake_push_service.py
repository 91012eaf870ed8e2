"""A fake push service (RFC 8030) that checks what a real one checks: it decrypts each body
with the subscription's private key (via `http_ece`), verifies the VAPID header with PyJWT
and checks TTL, Urgency and Topic (RFC 8030, 8291, 8292)."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.local_http import LocalServer, Request, Response
from tidings.channels.webpush_crypto import b64url_decode, b64url_encode


@dataclass
class Subscription:
    """A browser's side of one subscription: its key pair, auth secret and the fake's answer."""

    path: str
    answer: Response
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    received: list[dict[str, Any]] = field(default_factory=list)


class FakePushService:
    """Refuses what a real push service refuses; otherwise gives the subscription's answer."""

    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key  # the applicationServerKey subscriptions used
        self.subscriptions: dict[str, Subscription] = {}
        self.refusals: list[str] = []
        self.server = LocalServer(self.handle)

    def subscribe(self, name: str, answer: Response) -> Subscription:
        sub = Subscription(f"/push/{name}", answer)
        self.subscriptions[sub.path] = sub
        return sub

    def refuse(self, status: int, why: str) -> Response:
        self.refusals.append(why)
        return Response(status, body=why.encode())

    def handle(self, request: Request) -> Response:
        sub = self.subscriptions.get(request.target)
        if request.method != "POST" or sub is None:
            return self.refuse(404, f"no subscription at {request.method} {request.target}")
        problem = self.check_headers(request.headers)
        if problem:
            return self.refuse(400, problem)
        problem = self.check_vapid(request.headers.get("authorization", ""))
        if problem:
            return self.refuse(403, problem)
        if len(request.body) > 4096:
            return self.refuse(413, "payload too large")
        try:
            plaintext = http_ece.decrypt(
                request.body, private_key=sub.private_key, auth_secret=sub.auth
            )
        except Exception as exc:  # what a browser does with a body it cannot open: drop it
            return self.refuse(400, f"cannot decrypt: {exc!r}")
        sub.received.append({"headers": request.headers, "payload": json.loads(plaintext)})
        return sub.answer

    def check_headers(self, headers: dict[str, str]) -> str | None:
        if headers.get("content-encoding") != "aes128gcm":
            return f"Content-Encoding {headers.get('content-encoding')!r}"
        if not headers.get("ttl", "").isdigit():
            return f"TTL {headers.get('ttl')!r}"  # RFC 8030 §5.2: required
        if headers.get("urgency", "normal") not in ("very-low", "low", "normal", "high"):
            return f"Urgency {headers['urgency']!r}"
        if "topic" in headers and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", headers["topic"]):
            return f"Topic {headers['topic']!r}"
        return None

    def check_vapid(self, authorization: str) -> str | None:
        match = re.fullmatch(r"vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)", authorization)
        if not match:
            return f"Authorization {authorization!r}"
        token, k = match.groups()
        if k != self.vapid_public_key:
            return "k is not the key this subscription was made with"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(k))
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.server.url,  # the origin of the endpoint
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return f"VAPID JWT: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "VAPID exp more than 24 hours ahead"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return f"VAPID sub {claims['sub']!r}"
        return None

    def subscription_json(self, sub: Subscription) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives the browser to post to Tidings."""
        raw = sub.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.server.url + sub.path,
            "keys": {"p256dh": b64url_encode(raw), "auth": b64url_encode(sub.auth)},
        }
