"""POST /v1/providers/{provider}/events: delivery reports from Twilio and SendGrid.

No server key: the provider's own signature is the credential, checked before anything is
read; an unverified request is 401 and changes nothing. A verified report about a delivery we
do not know (erased with its user, or sent by another system on the same account) is still
answered 200, since providers resend anything else for hours.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import MediaType, Request, Response, post

from tidings.api.errors import ApiError, error_responses
from tidings.channels import sendgrid_events, twilio
from tidings.domain.feedback import Report
from tidings.domain.models import Channel, DeliveryStatus
from tidings.runtime import Runtime
from tidings.store.feedback import apply_reports

Req = Request[Any, Any, Any]
Reader = Callable[[Req, Runtime, bytes], Awaitable[list[Report]]]

TWILIO_SIGNATURE = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"


def _unverified(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


@functools.lru_cache(maxsize=4)
def _sendgrid_key(der_base64: str) -> ec.EllipticCurvePublicKey | None:
    # Checked when the settings load, so a set key always parses here.
    return sendgrid_events.load_public_key(der_base64) if der_base64 else None


def requested_url(request: Req, public_url: str) -> str:
    """The URL the provider called, as it signed it: TIDINGS_PUBLIC_URL (which may carry a path
    prefix a proxy strips) when set, else this request's own scheme and Host; then our path
    and the query string exactly as it arrived."""
    base = public_url.rstrip("/") or str(request.base_url).rstrip("/")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return base + request.url.path + (f"?{query}" if query else "")


async def twilio_reports(request: Req, runtime: Runtime, body: bytes) -> list[Report]:
    """A Twilio status callback: form fields signed with the account's auth token."""
    token = runtime.settings.twilio_auth_token
    if not token:
        raise _unverified("Twilio reports cannot be verified: TIDINGS_TWILIO_AUTH_TOKEN is not set")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise ApiError(415, "unsupported_media_type", f"Twilio status callbacks are {FORM}")
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "the form is not UTF-8") from None
    url = requested_url(request, runtime.settings.public_url)
    if not twilio.validate_signature(token, url, params, request.headers.get(TWILIO_SIGNATURE, "")):
        raise _unverified(f"{TWILIO_SIGNATURE} is missing or does not match")
    sid, status = params.get("MessageSid"), params.get("MessageStatus")
    if not sid or not status:
        raise _invalid("a status callback needs MessageSid and MessageStatus")
    reported = twilio.status_of(status)
    if reported is None or reported == "sent":
        return []  # queued, sending, sent, …: nothing a delivery does not already say
    if reported == "delivered":
        return [
            Report(
                Channel.SMS, DeliveryStatus.DELIVERED, request.query_params.get("delivery"), (sid,)
            )
        ]
    code = params.get("ErrorCode")
    return [
        Report(
            Channel.SMS,
            DeliveryStatus.FAILED,
            request.query_params.get("delivery"),
            (sid,),
            error=f"twilio {code}" if code else f"twilio {reported}",
        )
    ]


async def sendgrid_reports(request: Req, runtime: Runtime, body: bytes) -> list[Report]:
    """A SendGrid Event Webhook post: a JSON array of events, signed with SendGrid's key."""
    key = _sendgrid_key(runtime.settings.sendgrid_webhook_public_key)
    if key is None:
        raise _unverified(
            "SendGrid events cannot be verified: TIDINGS_SENDGRID_WEBHOOK_PUBLIC_KEY is not set"
        )
    signature = request.headers.get(sendgrid_events.SIGNATURE_HEADER, "")
    timestamp = request.headers.get(sendgrid_events.TIMESTAMP_HEADER, "")
    if not signature or not sendgrid_events.verify_signature(key, body, signature, timestamp):
        raise _unverified(f"{sendgrid_events.SIGNATURE_HEADER} is missing or does not match")
    if not sendgrid_events.is_fresh(timestamp):
        raise _unverified(f"{sendgrid_events.TIMESTAMP_HEADER} is more than 10 minutes off")
    try:
        events = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(events, list) or not all(
        isinstance(e, dict) and isinstance(e.get("event"), str) for e in events
    ):
        raise _invalid("the body must be an array of events, each with an `event` name")
    return sendgrid_events.reports_of(events)


READERS: dict[str, Reader] = {"twilio": twilio_reports, "sendgrid": sendgrid_reports}


@post(
    "/v1/providers/{provider:str}/events",
    status_code=200,
    summary="Delivery reports from a provider (twilio, sendgrid), verified by its signature",
    responses=error_responses(
        {
            400: "The body is not UTF-8 form data or JSON",
            401: "The provider's signature is missing or does not match, or cannot be checked "
            "(its secret is not configured)",
            404: "Tidings reads no reports from this provider",
            415: "Not the media type the provider sends",
            422: "Not the provider's report shape",
        }
    ),
)
async def provider_events(request: Req, runtime: Runtime, provider: str) -> Response[bytes]:
    reader = READERS.get(provider)
    if reader is None:
        known = ", ".join(READERS)
        raise ApiError(404, "not_found", f"no delivery reports from {provider!r} (only {known})")
    reports = await reader(request, runtime, await request.body())
    if reports:
        # Durable: the provider is told 200 and will not send this report again.
        moved = await runtime.store.db.write(
            lambda conn: apply_reports(conn, reports, runtime.status_events)
        )
        if moved:
            runtime.jobs.wake()  # status-webhook jobs were written
    return Response(b"", media_type=MediaType.TEXT)


handlers = [provider_events]
