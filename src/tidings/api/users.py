"""Users: profile upsert, read, erase; subscriber tokens; devices; preferences."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from tidings.api.auth import mint_subscriber_token, require_scope, require_user
from tidings.api.errors import ApiError, not_found
from tidings.api.schemas import (
    DeviceBody,
    DeviceList,
    DeviceView,
    PreferencesBody,
    TokenAnswer,
    UserBody,
    UserView,
    view,
)
from tidings.channels.twilio import is_e164
from tidings.domain.ids import new_id
from tidings.domain.models import Device, Preferences, Scope, User
from tidings.runtime import Runtime

Req = Request[Any, Any, Any]


def _check_user_id(user_id: str) -> None:
    if not user_id or len(user_id) > 200 or any(c.isspace() for c in user_id):
        raise ApiError(
            422, "validation_error", "user_id must be 1 to 200 characters without spaces"
        )


@put("/v1/users/{user_id:str}", summary="Create or update a user")
async def upsert_user(
    request: Req, runtime: Runtime, user_id: str, data: UserBody
) -> Response[UserView]:
    require_scope(await runtime.auth.principal(request), Scope.SEND)
    _check_user_id(user_id)
    if data.phone is not None and not is_e164(data.phone):
        raise ApiError(
            422,
            "validation_error",
            "phone must be an E.164 number: '+', the country code and the number, digits "
            "only, 15 at most (e.g. +14155550123)",
            {"field": "phone"},
        )
    user, created = await runtime.store.users.upsert(
        User(
            id=user_id,
            email=data.email,
            phone=data.phone,
            name=data.name,
            locale=data.locale,
            timezone=data.timezone,
            data=data.data,
        )
    )
    return Response(view(UserView, user), status_code=HTTP_201_CREATED if created else HTTP_200_OK)


@get("/v1/users/{user_id:str}", summary="A user's profile")
async def get_user(request: Req, runtime: Runtime, user_id: str) -> UserView:
    require_user(await runtime.auth.principal(request), user_id, Scope.READ)
    user = await runtime.store.users.get(user_id)
    if user is None:
        raise not_found("user")
    return view(UserView, user)


@delete("/v1/users/{user_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Erase a user")
async def erase_user(request: Req, runtime: Runtime, user_id: str) -> None:
    """Removes the user, devices, preferences, inbox, notifications and deliveries."""
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    if not await runtime.store.users.erase(user_id):
        raise not_found("user")


@post("/v1/users/{user_id:str}/token", status_code=HTTP_200_OK, summary="Mint a subscriber token")
async def user_token(request: Req, runtime: Runtime, user_id: str) -> TokenAnswer:
    require_scope(await runtime.auth.principal(request), Scope.SEND)
    _check_user_id(user_id)
    token, expires = mint_subscriber_token(
        runtime.auth.subscriber_secret, user_id, runtime.settings.subscriber_token_ttl
    )
    return TokenAnswer(token=token, expires_at=expires)


@post("/v1/users/{user_id:str}/devices", status_code=HTTP_201_CREATED, summary="Register a device")
async def add_device(request: Req, runtime: Runtime, user_id: str, data: DeviceBody) -> DeviceView:
    require_user(await runtime.auth.principal(request), user_id, Scope.SEND)
    if await runtime.store.users.get(user_id) is None:
        raise not_found("user")
    if data.provider == "webpush":
        sub: dict[str, Any] = data.subscription or {}
        keys: dict[str, Any] = sub["keys"] if isinstance(sub.get("keys"), dict) else {}
        if (
            not isinstance(sub.get("endpoint"), str)
            or not keys.get("p256dh")
            or not keys.get("auth")
        ):
            raise ApiError(
                422,
                "validation_error",
                "webpush needs subscription {endpoint, keys: {p256dh, auth}}",
            )
        token = sub["endpoint"]
    elif not data.token:
        raise ApiError(422, "validation_error", f"{data.provider} needs a token")
    else:
        token = data.token
    device = await runtime.store.users.add_device(
        Device(
            id=new_id(),
            user_id=user_id,
            provider=data.provider,
            token=token,
            subscription=data.subscription,
        )
    )
    return view(DeviceView, device)


@get("/v1/users/{user_id:str}/devices", summary="A user's devices (pruned ones show active: false)")
async def list_devices(request: Req, runtime: Runtime, user_id: str) -> DeviceList:
    require_user(await runtime.auth.principal(request), user_id, Scope.READ)
    return DeviceList([view(DeviceView, d) for d in await runtime.store.users.devices(user_id)])


@delete("/v1/users/{user_id:str}/devices/{device_id:str}", status_code=HTTP_204_NO_CONTENT)
async def delete_device(request: Req, runtime: Runtime, user_id: str, device_id: str) -> None:
    require_user(await runtime.auth.principal(request), user_id, Scope.SEND)
    if not await runtime.store.users.delete_device(user_id, device_id):
        raise not_found("device")


@get("/v1/users/{user_id:str}/preferences", summary="A user's channel and category switches")
async def get_preferences(request: Req, runtime: Runtime, user_id: str) -> PreferencesBody:
    require_user(await runtime.auth.principal(request), user_id, Scope.READ)
    prefs = await runtime.store.users.preferences(user_id)
    if prefs is None:
        raise not_found("user")
    return PreferencesBody(channels=prefs.channels, categories=prefs.categories)  # type: ignore[arg-type]


@put("/v1/users/{user_id:str}/preferences", summary="Replace a user's preferences")
async def put_preferences(
    request: Req, runtime: Runtime, user_id: str, data: PreferencesBody
) -> PreferencesBody:
    require_user(await runtime.auth.principal(request), user_id, Scope.SEND)
    prefs = Preferences(
        channels={str(k): v for k, v in data.channels.items()},
        categories={k: {str(c): on for c, on in v.items()} for k, v in data.categories.items()},
    )
    if not await runtime.store.users.set_preferences(user_id, prefs):
        raise not_found("user")
    return data


handlers = [
    upsert_user,
    get_user,
    erase_user,
    user_token,
    add_device,
    list_devices,
    delete_device,
    get_preferences,
    put_preferences,
]
