"""Twilio callback checks: documented signature examples, agreement with the `twilio` library."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tidings.channels.twilio import is_e164, signature, status_of, validate_signature

DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def doc_params(caller: str) -> dict[str, str]:
    return {
        "CallSid": "CA1234567890ABCDE",
        "Caller": caller,
        "Digits": "1234",
        "From": caller,
        "To": "+18005551212",
    }


# Twilio's worked examples, auth token 12345: the security guide
# (twilio.com/docs/usage/webhooks/webhooks-security) uses caller +12349013030; the helper
# libraries' validation docs and tests (twilio-php, twilio-csharp) use +14158675309.
DOCUMENTED = [
    (DOC_URL, doc_params("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    (DOC_URL, doc_params("+14158675309"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
]


@pytest.mark.parametrize(("url", "params", "expected"), DOCUMENTED)
def test_documented_examples_validate(url: str, params: dict[str, str], expected: str) -> None:
    assert signature("12345", url, params) == expected
    assert validate_signature("12345", url, params, expected)


@pytest.mark.parametrize(
    ("token", "url", "params", "sig"),
    [
        ("12345", DOC_URL, doc_params("+12349013030"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("54321", DOC_URL, doc_params("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ("12345", DOC_URL + "&x=1", doc_params("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        (
            "12345",
            DOC_URL,
            {**doc_params("+12349013030"), "Digits": "9999"},
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
        ),
        ("12345", DOC_URL, doc_params("+12349013030"), ""),
        ("", DOC_URL, doc_params("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ("12345", DOC_URL, doc_params("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ"),
    ],
    ids=["other-params", "wrong-token", "other-url", "tampered", "empty", "no-token", "cut"],
)
def test_a_wrong_signature_fails(token: str, url: str, params: dict[str, str], sig: str) -> None:
    assert not validate_signature(token, url, params, sig)


def test_twilio_may_sign_the_url_with_or_without_its_default_port() -> None:
    params = {"MessageSid": "SM123", "MessageStatus": "delivered"}
    for signed, received in [
        ("https://example.com:443/cb?d=1", "https://example.com/cb?d=1"),
        ("https://example.com/cb?d=1", "https://example.com:443/cb?d=1"),
    ]:
        assert validate_signature("tok", received, params, signature("tok", signed, params))


_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12)
urls = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}://{host}{port}/{'/'.join(path)}{query}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["example.com", "tidings.example.org", "127.0.0.1", "api.x.io"]),
    st.sampled_from(["", ":443", ":80", ":8443"]),
    st.lists(_segment, max_size=3),
    st.one_of(
        st.just(""),
        st.lists(st.tuples(_segment, _segment), min_size=1, max_size=3).map(
            lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs)
        ),
    ),
)
form_params = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=8)
tokens = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(token=tokens, url=urls, params=form_params)
def test_agrees_with_twilios_request_validator_on_genuine_signatures(
    token: str, url: str, params: dict[str, str]
) -> None:
    genuine = RequestValidator(token).compute_signature(url, params)
    assert validate_signature(token, url, params, genuine)
    assert RequestValidator(token).validate(url, params, genuine)
    assert signature(token, url, params) == genuine


@given(token=tokens, url=urls, params=form_params, other=urls, sig=st.text(max_size=30))
def test_agrees_with_twilios_request_validator_on_any_signature(
    token: str, url: str, params: dict[str, str], other: str, sig: str
) -> None:
    validator = RequestValidator(token)
    for candidate in (sig, validator.compute_signature(other, params)):
        assert validate_signature(token, url, params, candidate) == validator.validate(
            url, params, candidate
        )


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("delivered", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("sent", "sent"),
        ("read", "delivered"),
        ("canceled", "failed"),
        ("queued", None),
        ("accepted", None),
        ("sending", None),
        ("scheduled", None),
        ("received", None),
        ("something-new", None),
    ],
)
def test_status_callbacks_map_to_delivery_statuses(twilio_status: str, ours: str | None) -> None:
    assert status_of(twilio_status) == ours


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("+14155552671", True),
        ("+442071838750", True),
        ("+4930123", True),  # 7 digits: the shortest we take
        ("+123456789012345", True),  # 15 digits: E.164's longest
        ("+1234567890123456", False),  # 16 digits
        ("+123456", False),  # 6 digits
        ("14155552671", False),  # no +
        ("+04155552671", False),  # country codes never start with 0
        ("+1 415 555 2671", False),
        ("+1-415-555-2671", False),
        ("+1415555267a", False),
        ("+١٤١٥٥٥٥٢٦٧١", False),  # non-ASCII digits
        ("", False),
        ("+14155552671\n", False),
    ],
)
def test_e164(phone: str, valid: bool) -> None:
    assert is_e164(phone) is valid
