"""A fake of Google's OAuth2 token endpoint and the FCM HTTP v1 API in one server: checks the
JWT bearer grant with PyJWT and every messages:send body as FCM documents it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.clock import FakeClock
from tests.integration.asgi_server import Request, json_reply

PROJECT = "tidings-test"
CLIENT_EMAIL = "tidings@tidings-test.iam.gserviceaccount.com"
KEY_ID = "0f3c1e5a9b2d4c6e8a0b1c2d3e4f5a6b7c8d9e0f"
SEND_PATH = f"/v1/projects/{PROJECT}/messages:send"
# Spelled out here rather than imported, so a typo in the provider cannot pass its own test.
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MESSAGE_KEYS = {"token", "notification", "data", "android", "apns", "webpush"}
RESERVED_DATA = ("from", "notification", "message_type")
Reply = tuple[int, dict[str, str], bytes]


def fcm_error(status: int, canonical: str, code: str | None, message: str = "error") -> Reply:
    """An error exactly as FCM v1 words it: google.rpc.Status with an FcmError detail."""
    error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
    if code is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        ]
    return json_reply(status, {"error": error})


def retry_after_30(reply: Reply) -> Reply:
    status, headers, body = reply
    return status, {**headers, "retry-after": "30"}, body


@dataclass
class FakeGoogle:
    """Token endpoint + FCM. A request that breaks the protocol is answered 400 and recorded."""

    public_key: rsa.RSAPublicKey
    clock: FakeClock
    token_uri: str = ""
    grants: int = 0
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    sends: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)  # next answers to messages:send
    grant_replies: list[Reply] = field(default_factory=list)

    def revoke(self, token: str) -> None:
        """Google may revoke an access token before it expires; sends with it then get 401."""
        del self.tokens[token]

    def refuse(self, problem: str) -> Reply:
        self.problems.append(problem)
        return json_reply(400, {"error": "invalid_request", "error_description": problem})

    async def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/token":
            return self.grant(request)
        if request.method == "POST" and request.path == SEND_PATH:
            return self.send(request)
        return self.refuse(f"unexpected {request.method} {request.path}")

    def grant(self, request: Request) -> Reply:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return self.refuse(f"grant content-type {request.headers.get('content-type')}")
        form = parse_qs(request.body.decode(), strict_parsing=True)
        if sorted(form) != ["assertion", "grant_type"] or form["grant_type"] != [GRANT_TYPE]:
            return self.refuse(f"grant form {form}")
        assertion = form["assertion"][0]
        header = jwt.get_unverified_header(assertion)
        if header.get("alg") != "RS256" or header.get("kid") != KEY_ID:
            return self.refuse(f"assertion header {header}")
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=CLIENT_EMAIL,
                # Times are checked below against the fake clock, not the wall clock.
                options={
                    "require": ["iss", "aud", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            return self.refuse(f"assertion: {exc}")
        if claims.get("scope") != SCOPE:
            return self.refuse(f"scope {claims.get('scope')}")
        if not 0 < claims["exp"] - claims["iat"] <= 3600 or abs(claims["iat"] - self.clock()) > 5:
            return self.refuse(f"assertion lifetime iat={claims['iat']} exp={claims['exp']}")
        self.grants += 1
        if self.grant_replies:
            return self.grant_replies.pop(0)
        token = f"ya29.fake-{self.grants}"
        self.tokens[token] = self.clock() + 3599
        return json_reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def send(self, request: Request) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or self.tokens.get(token, 0) <= self.clock():
            return fcm_error(401, "UNAUTHENTICATED", None, "Request had invalid credentials.")
        if request.headers.get("content-type") != "application/json":
            return self.refuse(f"send content-type {request.headers.get('content-type')}")
        body = request.json()
        if problem := message_problem(body):
            return self.refuse(problem)
        self.sends.append(body["message"])
        if self.replies:
            return self.replies.pop(0)
        return json_reply(200, {"name": f"projects/{PROJECT}/messages/0:{len(self.sends)}%abc"})


def message_problem(body: Any) -> str | None:
    """What FCM v1 would refuse in a messages:send body, for the fields Tidings uses."""
    if not isinstance(body, dict) or list(body) != ["message"]:
        return f"body must be exactly {{'message': …}}: {body}"
    message = body["message"]
    if not set(message) <= MESSAGE_KEYS or not isinstance(message.get("token"), str):
        return f"message fields {sorted(message)}"
    if not set(message.get("notification", {})) <= {"title", "body"}:
        return f"notification {message['notification']}"
    for key, value in message.get("data", {}).items():
        if not isinstance(value, str):
            return f"data value for {key} is {type(value).__name__}, not a string"
        if key in RESERVED_DATA or key.startswith(("google", "gcm")):
            return f"reserved data key {key}"
    android = message.get("android", {})
    if android.get("priority", "normal") not in ("high", "normal"):
        return f"android priority {android}"
    apns = message.get("apns", {}).get("headers", {})
    if apns.get("apns-priority", "10") not in ("10", "5"):
        return f"apns headers {apns}"
    urgency = message.get("webpush", {}).get("headers", {}).get("Urgency", "normal")
    if urgency not in ("very-low", "low", "normal", "high"):
        return f"webpush Urgency {urgency}"
    return None
