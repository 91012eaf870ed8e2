"""Templates: upload a version (made active), read, list versions, activate one, preview."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, get, post, put
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta, Struct

from tidings.api.auth import require_scope
from tidings.api.errors import ApiError, not_found
from tidings.domain.models import Scope, User
from tidings.domain.templates import (
    TemplateError,
    TemplateRenderError,
    TemplateVersion,
    parse_template,
    pick_locale,
    render,
    user_variables,
)
from tidings.runtime import Runtime

Req = Request[Any, Any, Any]
KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


class TemplateSample(Struct, forbid_unknown_fields=True):
    """Variables to render every locale and channel with before the upload is accepted."""

    data: dict[str, Any] = {}
    user: dict[str, Any] | None = None


class TemplateBody(Struct, forbid_unknown_fields=True):
    # Loosely typed on purpose: validate_template reports every problem at once, which a
    # schema error (first problem only) would hide. The descriptions say what is required.
    category: Annotated[str | None, Meta(description="required: the category it is for")] = None
    critical: Annotated[
        Any, Meta(description="true: the user's preferences do not block it (default false)")
    ] = False
    locales: Annotated[
        dict[str, Any],
        Meta(
            description="required: locale -> channel -> part -> Jinja2 source "
            "(in_app: title, body, action_url, data; email: subject, text, html; "
            "push: title, body, data; sms: body; webhook: body)"
        ),
    ] = {}
    default_locale: Annotated[
        str | None, Meta(description="required: one of the locales; it has every channel")
    ] = None
    sample: TemplateSample | None = None

    def template_body(self) -> dict[str, Any]:
        """The body validate_template checks: absent fields stay absent."""
        body = {"critical": self.critical, "locales": self.locales}
        if self.category is not None:
            body["category"] = self.category
        if self.default_locale is not None:
            body["default_locale"] = self.default_locale
        return body


class TemplateView(Struct):
    key: str
    version: int
    active: bool
    category: str
    critical: bool
    default_locale: str
    locales: dict[str, dict[str, dict[str, Any]]]
    created_at: datetime | None


class TemplateVersions(Struct):
    versions: list[TemplateView]


class PreviewRequest(Struct, forbid_unknown_fields=True):
    data: dict[str, Any] = {}
    user_id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    user: dict[str, Any] | None = None
    locale: (
        Annotated[str, Meta(max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
        | None
    ) = None


class RenderedChannel(Struct):
    locale: str  # the template locale used for this channel, after fallback
    parts: dict[str, Any]


class PreviewAnswer(Struct):
    key: str
    version: int
    channels: dict[str, RenderedChannel]


def template_view(template: TemplateVersion, active: bool) -> TemplateView:
    return TemplateView(
        key=template.key,
        version=template.version,
        active=active,
        category=template.category,
        critical=template.critical,
        default_locale=template.default_locale,
        locales=template.locales,
        created_at=template.created_at,
    )


def render_failure(errors: list[TemplateRenderError]) -> ApiError:
    details = [
        {"locale": e.locale, "channel": e.channel, "part": e.part, "message": e.message}
        for e in errors
    ]
    return ApiError(422, "render_error", "the template does not render: " + str(errors[0]), details)


def check_sample(template: TemplateVersion, sample: TemplateSample) -> None:
    """Render every locale and channel with the sample; ApiError(422) naming each failure."""
    errors = []
    for locale, channels in template.locales.items():
        for channel in channels:
            try:
                render(template, channel, data=sample.data, user=sample.user, locale=locale)
            except TemplateRenderError as exc:
                errors.append(exc)
    if errors:
        raise render_failure(errors)


async def active_or_404(runtime: Runtime, key: str) -> TemplateVersion:
    template = await runtime.store.templates.active(key)
    if template is None:
        raise not_found("template")
    return template


@put("/v1/templates/{key:str}", status_code=HTTP_201_CREATED, summary="Upload a template version")
async def put_template(
    request: Req, runtime: Runtime, key: str, data: TemplateBody
) -> TemplateView:
    """Stored as the next version and made active. With `sample`, every locale and channel
    must render with it, or nothing is stored (422)."""
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    if not KEY.match(key):
        raise ApiError(422, "validation_error", "key must be 1 to 200 of A-Z a-z 0-9 _ . : -")
    body = data.template_body()
    try:
        checked = parse_template(key, 0, body)
    except TemplateError as exc:
        details = [{"where": p.where, "message": p.message} for p in exc.problems]
        message = f"the template is not valid: {exc}"
        raise ApiError(422, "validation_error", message, details) from None
    if data.sample is not None:
        check_sample(checked, data.sample)
    return template_view(await runtime.store.templates.put(key, body), True)


@get("/v1/templates/{key:str}", summary="The active version of a template")
async def get_template(request: Req, runtime: Runtime, key: str) -> TemplateView:
    require_scope(await runtime.auth.principal(request), Scope.READ)
    return template_view(await active_or_404(runtime, key), True)


@get("/v1/templates/{key:str}/versions", summary="Every version of a template, oldest first")
async def list_versions(request: Req, runtime: Runtime, key: str) -> TemplateVersions:
    require_scope(await runtime.auth.principal(request), Scope.READ)
    found = await runtime.store.templates.versions(key)
    if not found:
        raise not_found("template")
    return TemplateVersions([template_view(t, active) for t, active in found])


@post(
    "/v1/templates/{key:str}/versions/{version:int}/activate",
    status_code=HTTP_200_OK,
    summary="Make a version the active one",
)
async def activate(request: Req, runtime: Runtime, key: str, version: int) -> TemplateView:
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    if not await runtime.store.templates.activate(key, version):
        raise not_found("template version")
    return template_view(await active_or_404(runtime, key), True)


@post("/v1/templates/{key:str}/preview", status_code=HTTP_200_OK, summary="Render a template")
async def preview(request: Req, runtime: Runtime, key: str, data: PreviewRequest) -> PreviewAnswer:
    """Every channel of the active version, rendered for `locale` (default: the user's, with
    fallback), with `data` and the stored user `user_id` or the inline `user`."""
    require_scope(await runtime.auth.principal(request), Scope.READ)
    if data.user_id is not None and data.user is not None:
        raise ApiError(422, "validation_error", "give user_id or user, not both")
    template = await active_or_404(runtime, key)
    user: User | dict[str, Any] | None = data.user
    if data.user_id is not None:
        user = await runtime.store.users.get(data.user_id)
        if user is None:
            raise ApiError(422, "validation_error", f"user {data.user_id!r} does not exist")
    locale = data.locale or user_variables(user)["locale"]
    channels, errors = {}, []
    for channel in sorted(template.channels):
        try:
            parts = render(template, channel, data=data.data, user=user, locale=locale)
        except TemplateRenderError as exc:
            errors.append(exc)
            continue
        chosen = pick_locale(template, locale, channel=channel)
        channels[channel.value] = RenderedChannel(locale=chosen, parts=parts)
    if errors:
        raise render_failure(errors)
    return PreviewAnswer(key=key, version=template.version, channels=channels)


handlers = [put_template, get_template, list_versions, activate, preview]
