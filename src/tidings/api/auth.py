"""Who is calling: a server key (`Bearer tk_…`, scoped) or a subscriber token (a user's JWT)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from litestar.connection import ASGIConnection

from tidings.api.errors import ApiError
from tidings.domain.models import ApiKey, Scope
from tidings.store.keys import KeyStore

KEY_CACHE_SECONDS = 5.0  # a revoked key stops working within this long
# Where a request keeps who it is, so the rate-limit middleware and the handler ask once.
PRINCIPAL_STATE = "tidings.principal"


@dataclass(frozen=True, slots=True)
class Principal:
    key: ApiKey | None = None  # a server key
    user_id: str | None = None  # a subscriber token's user

    @property
    def owner(self) -> str:
        """Whom idempotency keys belong to."""
        return self.key.id if self.key else f"user:{self.user_id}"


def mint_subscriber_token(secret: str, user_id: str, ttl: int) -> tuple[str, datetime]:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl)
    token = jwt.encode({"sub": user_id, "exp": expires}, secret, algorithm="HS256")
    return token, expires


class Authenticator:
    def __init__(self, keys: KeyStore, subscriber_secret: str) -> None:
        self.keys = keys
        self.subscriber_secret = subscriber_secret
        self._cache: dict[str, tuple[float, ApiKey]] = {}

    async def principal(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
        state = connection.scope.setdefault("state", {})
        known = state.get(PRINCIPAL_STATE)
        if known is None:
            try:
                known = await self._principal(connection)
            except ApiError as exc:
                known = exc
            state[PRINCIPAL_STATE] = known
        if isinstance(known, ApiError):
            raise known
        return known  # type: ignore[no-any-return]

    async def _principal(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
        credential = _credential(connection)
        if credential is None:
            raise ApiError(401, "unauthorized", "missing credentials: send Authorization: Bearer …")
        if credential.startswith("tk_"):
            key = await self._key(credential)
            if key is None:
                raise ApiError(401, "unauthorized", "unknown or revoked server key")
            return Principal(key=key)
        try:
            claims = jwt.decode(
                credential,
                self.subscriber_secret,
                algorithms=["HS256"],
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "unauthorized", "subscriber token expired") from None
        except jwt.InvalidTokenError as exc:
            raise ApiError(401, "unauthorized", f"invalid subscriber token: {exc}") from None
        return Principal(user_id=str(claims["sub"]))

    async def _key(self, raw: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(raw)
        if cached and cached[0] > now:
            return cached[1]
        key = await self.keys.authenticate(raw)
        if key is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[raw] = (now + KEY_CACHE_SECONDS, key)
        return key


def raw_header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str | None:
    """One header straight from the ASGI scope (`name` in lower case). Litestar's `headers`
    would build a dict of them all and keep it for the connection's life: for a WebSocket,
    that is hours of memory for one look at the credentials."""
    for key, value in connection.scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _credential(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = raw_header(connection, b"authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "unauthorized", "Authorization must be 'Bearer <key or token>'")
        return value.strip()
    # Browsers cannot set headers on WebSocket and EventSource: accept ?token= there.
    return connection.query_params.get("token") or None


def require_scope(principal: Principal, needed: Scope) -> None:
    if principal.key is None:
        raise ApiError(403, "forbidden", "a subscriber token cannot use this endpoint")
    if not principal.key.scope.allows(needed):
        raise ApiError(
            403,
            "forbidden",
            f"this key has scope {principal.key.scope.value}; {needed.value} is needed",
        )


def require_user(principal: Principal, user_id: str, key_scope: Scope) -> None:
    """The user's own token, or a server key with `key_scope`."""
    if principal.key is None:
        if principal.user_id != user_id:
            raise ApiError(403, "forbidden", "a subscriber token reaches only its own user")
        return
    require_scope(principal, key_scope)
