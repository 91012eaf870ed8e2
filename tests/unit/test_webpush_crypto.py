"""Web Push encryption against RFC 8291's published example and `http_ece`; VAPID against PyJWT."""

from __future__ import annotations

import os
from pathlib import Path

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.webpush_crypto import (
    HEADER_LENGTH,
    VapidKeys,
    audience,
    b64url_decode,
    b64url_encode,
    derive_keys,
    encrypt,
    public_key_bytes,
)

# RFC 8291 §5 (Push Message Encryption Example) and Appendix A (Intermediate Values for
# Encryption), in the RFC's own base64url spelling.
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_AUTH_SECRET = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_ECDH_SECRET = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"
RFC_IKM = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"
RFC_PRK = "09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc"
RFC_CEK = "oIhVW04MRdy2XN9CiKLxTg"
RFC_NONCE = "4h_95klXJ5E_qnoN"
RFC_HEADER = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
    "WAmS6TlzAC8wEqKK6PBru3jl7A8"
)
RFC_CIPHERTEXT = "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
    "WAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexS"
    "gSxsj_Qulcy4a-fN"
)


def private_key(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(b64), "big"), ec.SECP256R1())


def rfc_body() -> bytes:
    return encrypt(
        RFC_PLAINTEXT,
        b64url_decode(RFC_UA_PUBLIC),
        b64url_decode(RFC_AUTH_SECRET),
        as_private=private_key(RFC_AS_PRIVATE),
        salt=b64url_decode(RFC_SALT),
    )


def test_rfc8291_example_is_reproduced_byte_for_byte() -> None:
    assert rfc_body() == b64url_decode(RFC_BODY)


def test_rfc8291_header_and_ciphertext_match_appendix_a() -> None:
    body = rfc_body()
    assert body[:HEADER_LENGTH] == b64url_decode(RFC_HEADER)
    assert body[HEADER_LENGTH:] == b64url_decode(RFC_CIPHERTEXT)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("ecdh_secret", RFC_ECDH_SECRET),
        ("ikm", RFC_IKM),
        ("prk", RFC_PRK),
        ("cek", RFC_CEK),
        ("nonce", RFC_NONCE),
    ],
)
def test_rfc8291_intermediate_values_match_appendix_a(field: str, expected: str) -> None:
    keys = derive_keys(
        private_key(RFC_AS_PRIVATE),
        b64url_decode(RFC_UA_PUBLIC),
        b64url_decode(RFC_AUTH_SECRET),
        b64url_decode(RFC_SALT),
    )
    assert b64url_encode(getattr(keys, field)) == expected


def test_rfc8291_key_pairs_are_the_published_ones() -> None:
    assert b64url_encode(public_key_bytes(private_key(RFC_AS_PRIVATE).public_key())) == (
        RFC_AS_PUBLIC
    )
    assert b64url_encode(public_key_bytes(private_key(RFC_UA_PRIVATE).public_key())) == (
        RFC_UA_PUBLIC
    )


def test_http_ece_decrypts_the_rfc_example() -> None:
    plaintext = http_ece.decrypt(
        rfc_body(),
        private_key=private_key(RFC_UA_PRIVATE),
        auth_secret=b64url_decode(RFC_AUTH_SECRET),
        version="aes128gcm",
    )
    assert plaintext == RFC_PLAINTEXT


def test_http_ece_encrypts_the_same_bytes_with_the_same_inputs() -> None:
    theirs = http_ece.encrypt(
        RFC_PLAINTEXT,
        salt=b64url_decode(RFC_SALT),
        private_key=private_key(RFC_AS_PRIVATE),
        dh=b64url_decode(RFC_UA_PUBLIC),
        auth_secret=b64url_decode(RFC_AUTH_SECRET),
        version="aes128gcm",
    )
    assert rfc_body() == theirs


@pytest.mark.parametrize(
    ("size", "padding"),
    [(0, 0), (1, 0), (100, 0), (100, 50), (3993, 0), (4000, 30)],
)
def test_a_fresh_subscription_decrypts_what_tidings_encrypts(size: int, padding: int) -> None:
    ua_private = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    plaintext = os.urandom(size)
    body = encrypt(
        plaintext,
        public_key_bytes(ua_private.public_key()),
        auth,
        record_size=8192,
        padding=padding,
    )
    assert http_ece.decrypt(body, private_key=ua_private, auth_secret=auth) == plaintext


def test_every_message_gets_its_own_salt_and_sender_key() -> None:
    ua = public_key_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())
    auth = os.urandom(16)
    first, second = encrypt(b"same", ua, auth), encrypt(b"same", ua, auth)
    assert first[:16] != second[:16]
    assert first[21:HEADER_LENGTH] != second[21:HEADER_LENGTH]


def _not_on_curve() -> bytes:
    point = bytearray(b64url_decode(RFC_UA_PUBLIC))
    point[40] ^= 0xFF
    return bytes(point)


@pytest.mark.parametrize(
    ("plaintext", "ua_public", "auth", "record_size", "complaint"),
    [
        (b"x", b64url_decode(RFC_UA_PUBLIC)[:64], os.urandom(16), 4096, "65-byte"),
        (b"x", b"\x02" + b64url_decode(RFC_UA_PUBLIC)[1:], os.urandom(16), 4096, "65-byte"),
        (b"x", _not_on_curve(), os.urandom(16), 4096, "not a valid P-256"),
        (b"x", b64url_decode(RFC_UA_PUBLIC), os.urandom(8), 4096, "auth secret"),
        (b"x" * 4079, b64url_decode(RFC_UA_PUBLIC), os.urandom(16), 4096, "do not fit"),
    ],
)
def test_malformed_input_is_refused_before_anything_is_encrypted(
    plaintext: bytes, ua_public: bytes, auth: bytes, record_size: int, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        encrypt(plaintext, ua_public, auth, record_size=record_size)


# --- VAPID (RFC 8292) ---

NOW = 1_700_000_000.0


def verify(keys: VapidKeys, header: str, endpoint: str) -> dict[str, object]:
    """What a push service does: split the header, rebuild the key from k, verify the JWT."""
    scheme, _, params = header.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert set(fields) == {"t", "k"}
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b64url_decode(fields["k"])
    )
    assert fields["k"] == keys.public_key_b64url
    claims: dict[str, object] = jwt.decode(
        fields["t"],
        public,
        algorithms=["ES256"],
        audience=audience(endpoint),
        options={"require": ["aud", "exp", "sub"], "verify_exp": False},
    )
    assert jwt.get_unverified_header(fields["t"])["typ"] == "JWT"
    return claims


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"),
        (
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://web.push.apple.com:443/QGu?x=1", "https://web.push.apple.com"),
        ("https://PUSH.Example.com:8443/p", "https://push.example.com:8443"),
        ("http://127.0.0.1:9000/push/1", "http://127.0.0.1:9000"),
        ("https://[2001:db8::1]/p", "https://[2001:db8::1]"),
    ],
)
def test_vapid_token_verifies_with_pyjwt_for_the_endpoint_origin(
    endpoint: str, origin: str
) -> None:
    keys = VapidKeys.generate()
    claims = verify(keys, keys.authorization(endpoint, "mailto:ops@example.com", NOW), endpoint)
    assert claims["aud"] == origin
    assert claims["sub"] == "mailto:ops@example.com"
    exp = claims["exp"]
    assert isinstance(exp, int)
    assert NOW < exp <= NOW + 24 * 3600


def test_vapid_token_is_reused_for_one_audience_until_near_expiry() -> None:
    keys = VapidKeys.generate()
    subject = "https://example.com/contact"
    first = keys.token("https://push.example/a", subject, NOW)
    assert keys.token("https://push.example/b", subject, NOW + 3600) == first
    assert keys.token("https://other.example/a", subject, NOW) != first
    exp = jwt.decode(first, options={"verify_signature": False})["exp"]
    renewed = keys.token("https://push.example/a", subject, exp - 60)
    assert renewed != first
    assert jwt.decode(renewed, options={"verify_signature": False})["exp"] > exp


@pytest.mark.parametrize("subject", ["ops@example.com", "http://example.com", ""])
def test_vapid_subject_must_be_mailto_or_https(subject: str) -> None:
    with pytest.raises(ValueError, match="mailto"):
        VapidKeys.generate().authorization("https://push.example/a", subject, NOW)


def test_vapid_keys_survive_a_pem_round_trip_from_text_and_from_a_file(tmp_path: Path) -> None:
    keys = VapidKeys.generate()
    pem = keys.to_pem()
    path = tmp_path / "vapid.pem"
    path.write_bytes(pem)
    for loaded in (
        VapidKeys.from_pem(pem),
        VapidKeys.load(pem.decode()),
        VapidKeys.load(str(path)),
    ):
        assert loaded.public_key_b64url == keys.public_key_b64url
        verify(
            keys,
            loaded.authorization("https://p.example/x", "mailto:a@b.c", NOW),
            "https://p.example/x",
        )


def test_vapid_public_key_is_what_browsers_take_as_application_server_key() -> None:
    raw = b64url_decode(VapidKeys.generate().public_key_b64url)
    assert len(raw) == 65 and raw[0] == 0x04
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)  # a valid point
