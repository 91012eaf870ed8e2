"""A fake APNs provider API: checks each request as Apple documents it (HTTP/2, ES256
provider token, apns-* headers, payload) and answers with scripted outcomes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.clock import FakeClock
from tests.integration.asgi_server import Request

KEY_ID = "ABC123DEFG"
TEAM_ID = "DEF123GHIJ"
TOPIC = "dev.tidings.app"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEVICE_PATH = re.compile(r"/3/device/([0-9a-fA-F]{64})")
Reply = tuple[int, dict[str, str], bytes]


def apns_error(status: int, reason: str, **headers: str) -> Reply:
    body: dict[str, Any] = {"reason": reason}
    if status == 410:
        body["timestamp"] = 1_750_000_000_000  # when the token stopped being valid, in ms
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


@dataclass
class Sent:
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    provider_token: str


@dataclass
class FakeApns:
    """Apple's side. A request that breaks the protocol gets Apple's 400/403 and is recorded."""

    public_key: ec.EllipticCurvePublicKey
    clock: FakeClock
    sends: list[Sent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)  # next answers, instead of a 200
    provider_tokens: list[str] = field(default_factory=list)  # distinct, in order of first use
    _issued_at: dict[str, int] = field(default_factory=dict)
    _expired: set[str] = field(default_factory=set)

    def refuse(self, status: int, reason: str, problem: str) -> Reply:
        self.problems.append(f"{reason}: {problem}")
        return apns_error(status, reason)

    async def handle(self, request: Request) -> Reply:
        if request.http_version != "2":
            return self.refuse(400, "BadRequest", f"HTTP/{request.http_version}, not HTTP/2")
        if request.method != "POST":
            return self.refuse(405, "MethodNotAllowed", request.method)
        path = DEVICE_PATH.fullmatch(request.path)
        if path is None:
            return self.refuse(404, "BadPath", request.path)
        if refused := self.check_provider_token(request.headers.get("authorization", "")):
            return refused
        if refused := self.check_headers(request.headers):
            return refused
        if len(request.body) > 4096:
            return self.refuse(413, "PayloadTooLarge", f"{len(request.body)} bytes")
        try:
            payload = request.json()
        except ValueError:
            return self.refuse(400, "PayloadEmpty", "body is not JSON")
        if refused := self.check_payload(payload, request.headers["apns-push-type"]):
            return refused
        provider_token = request.headers["authorization"].removeprefix("bearer ")
        self.sends.append(Sent(path[1], request.headers, payload, provider_token))
        if self.replies:
            status, headers, body = self.replies.pop(0)
            if status == 403 and b"ExpiredProviderToken" in body:
                self._expired.add(provider_token)
            return status, {"apns-id": request.headers["apns-id"], **headers}, body
        return 200, {"apns-id": request.headers["apns-id"]}, b""

    def check_provider_token(self, authorization: str) -> Reply | None:
        scheme, _, token = authorization.partition(" ")
        if scheme != "bearer" or not token:
            return self.refuse(403, "MissingProviderToken", authorization)
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            return self.refuse(403, "InvalidProviderToken", str(exc))
        if header.get("alg") != "ES256" or header.get("kid") != KEY_ID:
            return self.refuse(403, "InvalidProviderToken", f"header {header}")
        if claims["iss"] != TEAM_ID or set(claims) != {"iss", "iat"}:
            return self.refuse(403, "InvalidProviderToken", f"claims {claims}")
        if not self.clock() - 3600 < claims["iat"] <= self.clock() + 5:
            return self.refuse(403, "ExpiredProviderToken", f"iat {claims['iat']}")
        if token in self._expired:
            return apns_error(403, "ExpiredProviderToken")  # Apple's word, not a client fault
        if token not in self._issued_at:
            previous = self.provider_tokens[-1] if self.provider_tokens else None
            if (
                previous is not None
                and previous not in self._expired
                and claims["iat"] - self._issued_at[previous] < 20 * 60
            ):
                return self.refuse(429, "TooManyProviderTokenUpdates", "new token within 20 min")
            self.provider_tokens.append(token)
            self._issued_at[token] = claims["iat"]
        return None

    def expire(self, provider_token: str) -> None:
        """From now on answer this token with ExpiredProviderToken, as Apple may at any time."""
        self._expired.add(provider_token)

    def check_headers(self, headers: dict[str, str]) -> Reply | None:
        if headers.get("apns-topic") != TOPIC:
            return self.refuse(400, "BadTopic", str(headers.get("apns-topic")))
        push_type = headers.get("apns-push-type")
        priority = headers.get("apns-priority")
        if push_type not in ("alert", "background"):
            return self.refuse(400, "InvalidPushType", str(push_type))
        if priority not in ("10", "5") or (push_type == "background" and priority != "5"):
            return self.refuse(400, "BadPriority", f"{push_type} at {priority}")
        if not headers.get("apns-expiration", "").isdigit():
            return self.refuse(400, "BadExpirationDate", str(headers.get("apns-expiration")))
        if not UUID.fullmatch(headers.get("apns-id", "")):
            return self.refuse(400, "BadMessageId", str(headers.get("apns-id")))
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return self.refuse(400, "BadCollapseId", headers["apns-collapse-id"])
        return None

    def check_payload(self, payload: Any, push_type: str) -> Reply | None:
        aps = payload.get("aps") if isinstance(payload, dict) else None
        if not isinstance(aps, dict):
            return self.refuse(400, "PayloadEmpty", f"no aps dictionary: {payload}")
        if push_type == "alert" and not (
            isinstance(aps.get("alert"), dict) and set(aps["alert"]) <= {"title", "body"}
        ):
            return self.refuse(400, "BadRequest", f"alert push without an alert: {aps}")
        if push_type == "background" and aps != {"content-available": 1}:
            return self.refuse(400, "BadRequest", f"background push must be silent: {aps}")
        return None
