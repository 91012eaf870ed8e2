"""TwilioProvider against a local fake of Twilio's Messages API (2010-04-01, form-encoded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.integration.fake_twilio import (
    CALLBACK,
    FROM,
    INVALID_TO,
    SERVICE,
    SID,
    TOKEN,
    FakeTwilio,
    error,
)
from tests.integration.local_http import Response
from tidings.channels.base import Message, PermanentError, TransientError
from tidings.channels.twilio import TwilioProvider, status_of, validate_signature
from tidings.domain.models import Channel, User


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    async with fake.server:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def provider(
    client: httpx.AsyncClient, fake: FakeTwilio, *, token: str = TOKEN, **kwargs: Any
) -> TwilioProvider:
    options: dict[str, Any] = {"from_number": FROM, "status_callback_url": CALLBACK, **kwargs}
    return TwilioProvider(client, SID, token, base_url=fake.server.url, **options)


def sms(to: str | None = "+14155552671", body: Any = "Your code is 123456") -> Message:
    return Message(
        delivery_id="dlv_9",
        notification_id="ntf_9",
        channel=Channel.SMS,
        category="login",
        user=User(id="u_1"),
        content={"body": body},
        address=to,
    )


async def test_an_sms_is_created_with_the_documented_form_and_its_sid_is_the_receipt(
    twilio: FakeTwilio, client: httpx.AsyncClient
) -> None:
    receipt = await provider(client, twilio).send(sms())
    assert twilio.refusals == []
    [form] = twilio.created
    assert receipt.provider_message_id == "SM" + "0" * 31 + "1"
    assert form == {
        "To": "+14155552671",
        "From": FROM,
        "Body": "Your code is 123456",
        "StatusCallback": CALLBACK + "?delivery=dlv_9",
    }


async def test_a_messaging_service_sends_instead_of_a_from_number(
    twilio: FakeTwilio, client: httpx.AsyncClient
) -> None:
    await provider(client, twilio, messaging_service_sid=SERVICE, status_callback_url=None).send(
        sms()
    )
    assert twilio.refusals == []
    assert twilio.created == [
        {"To": "+14155552671", "MessagingServiceSid": SERVICE, "Body": "Your code is 123456"}
    ]


@pytest.mark.parametrize(
    ("answer", "error_type", "retry_after", "reason"),
    [
        (
            error(400, 21610, "Attempt to send to unsubscribed recipient"),
            PermanentError,
            None,
            "21610",
        ),
        (
            error(400, 21614, "'To' number is not a valid mobile number"),
            PermanentError,
            None,
            "21614",
        ),
        (
            error(429, 20429, "Too Many Requests", **{"retry-after": "30"}),
            TransientError,
            30.0,
            "20429",
        ),
        (error(500, 20500, "Internal Server Error"), TransientError, None, "500"),
        (Response(503, body=b"<html>unavailable</html>"), TransientError, None, "503"),
        (Response(201, body=b"{}"), PermanentError, None, "without a message sid"),
    ],
)
async def test_twilio_answers_map_to_outcomes(
    twilio: FakeTwilio,
    client: httpx.AsyncClient,
    answer: Response,
    error_type: type[Exception],
    retry_after: float | None,
    reason: str,
) -> None:
    twilio.next_answer = answer
    with pytest.raises(error_type, match=reason) as caught:
        await provider(client, twilio).send(sms())
    if isinstance(caught.value, TransientError):
        assert caught.value.retry_after == retry_after
    assert twilio.refusals == []


async def test_an_invalid_to_number_is_permanent_with_twilios_code(
    twilio: FakeTwilio, client: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError, match="21211"):
        await provider(client, twilio).send(sms(INVALID_TO))


async def test_wrong_credentials_stay_retryable_until_the_configuration_is_fixed(
    twilio: FakeTwilio, client: httpx.AsyncClient
) -> None:
    with pytest.raises(TransientError, match="20003"):
        await provider(client, twilio, token="0" * 32).send(sms())
    assert twilio.refusals == ["basic auth"]


@pytest.mark.parametrize(
    ("to", "body", "reason"),
    [
        (None, "hi", "E.164"),
        ("4155552671", "hi", "E.164"),
        ("+1 415 555 2671", "hi", "E.164"),
        ("+14155552671", "", "no body"),
        ("+14155552671", None, "no body"),
        ("+14155552671", "x" * 1601, "1601 characters"),
    ],
)
async def test_what_twilio_would_refuse_is_refused_before_sending(
    twilio: FakeTwilio, client: httpx.AsyncClient, to: str | None, body: Any, reason: str
) -> None:
    with pytest.raises(PermanentError, match=reason):
        await provider(client, twilio).send(sms(to, body))
    assert twilio.server.requests == []


async def test_an_unreachable_api_is_transient(client: httpx.AsyncClient) -> None:
    fake = FakeTwilio()
    async with fake.server:
        pass  # the port is closed again
    with pytest.raises(TransientError, match="unreachable"):
        await provider(client, fake).send(sms())


async def test_the_status_callback_twilio_would_send_validates_and_maps(
    twilio: FakeTwilio, client: httpx.AsyncClient
) -> None:
    receipt = await provider(client, twilio).send(sms())
    callback_url = twilio.created[0]["StatusCallback"]
    params = {
        "AccountSid": SID,
        "MessageSid": str(receipt.provider_message_id),
        "MessageStatus": "delivered",
        "To": "+14155552671",
        "From": FROM,
        "ApiVersion": "2010-04-01",
    }
    signed = RequestValidator(TOKEN).compute_signature(callback_url, params)
    assert validate_signature(TOKEN, callback_url, params, signed)
    assert not validate_signature(
        TOKEN, callback_url, {**params, "MessageStatus": "failed"}, signed
    )
    assert parse_qs(urlsplit(callback_url).query) == {"delivery": ["dlv_9"]}
    assert status_of(params["MessageStatus"]) == "delivered"


@pytest.mark.parametrize(
    "kwargs",
    [{"from_number": None}, {"from_number": None, "messaging_service_sid": ""}],
)
async def test_a_sender_is_required(client: httpx.AsyncClient, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="From"):
        TwilioProvider(client, SID, TOKEN, **kwargs)
