"""Web Push message encryption (RFC 8291, aes128gcm of RFC 8188) and VAPID (RFC 8292).

Pure functions and one small key class; no I/O. `webpush.py` sends what these produce.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

KEY_LENGTH = 16  # AEAD_AES_128_GCM key
NONCE_LENGTH = 12
TAG_LENGTH = 16
SALT_LENGTH = 16
AUTH_SECRET_LENGTH = 16
PUBLIC_KEY_LENGTH = 65  # an uncompressed P-256 point: 0x04 || x || y
HEADER_LENGTH = SALT_LENGTH + 4 + 1 + PUBLIC_KEY_LENGTH  # salt, rs, idlen, keyid = 86

TOKEN_LIFETIME = 12 * 3600  # RFC 8292 §2: exp no more than 24 hours ahead; half leaves slack
TOKEN_REFRESH_MARGIN = 3600  # mint a new token this long before the cached one expires


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, the encoding every Web Push key travels in."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (browsers send it without)."""
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed X9.62 point, always 65 bytes (never a shortened coordinate)."""
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


@dataclass(frozen=True, slots=True)
class DerivedKeys:
    """The intermediate values of RFC 8291 §3.4 and RFC 8188 §2.2, exposed for test vectors."""

    ecdh_secret: bytes
    ikm: bytes
    prk: bytes
    cek: bytes
    nonce: bytes


def derive_keys(
    as_private: ec.EllipticCurvePrivateKey, ua_public: bytes, auth_secret: bytes, salt: bytes
) -> DerivedKeys:
    """Key schedule: ECDH, then the auth secret (RFC 8291 §3.4), then the salt (RFC 8188 §2.2)."""
    ua_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    ecdh_secret = as_private.exchange(ec.ECDH(), ua_key)
    key_info = b"WebPush: info\x00" + ua_public + public_key_bytes(as_private.public_key())
    ikm = HKDF(hashes.SHA256(), 32, salt=auth_secret, info=key_info).derive(ecdh_secret)
    prk = _hmac_sha256(salt, ikm)  # HKDF-Extract, kept separate so the PRK can be checked
    cek = _hkdf_expand(prk, b"Content-Encoding: aes128gcm\x00", KEY_LENGTH)
    nonce = _hkdf_expand(prk, b"Content-Encoding: nonce\x00", NONCE_LENGTH)
    return DerivedKeys(ecdh_secret, ikm, prk, cek, nonce)


def encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    as_private: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
    record_size: int = 4096,
    padding: int = 0,
) -> bytes:
    """Encrypt one push message as a single aes128gcm record: header || ciphertext.

    `as_private` (the sender's one-time key pair) and `salt` are fresh per message unless
    given; give them only to reproduce test vectors, since reusing either with the same
    subscription reuses an AES-GCM key and nonce. Raises ValueError for malformed keys or
    a message that does not fit one record.
    """
    if len(ua_public) != PUBLIC_KEY_LENGTH or ua_public[0] != 0x04:
        raise ValueError("p256dh must be a 65-byte uncompressed P-256 point")
    if len(auth_secret) != AUTH_SECRET_LENGTH:
        raise ValueError(f"auth secret must be {AUTH_SECRET_LENGTH} bytes, not {len(auth_secret)}")
    if salt is None:
        salt = os.urandom(SALT_LENGTH)
    elif len(salt) != SALT_LENGTH:
        raise ValueError(f"salt must be {SALT_LENGTH} bytes")
    if padding < 0:
        raise ValueError("padding must not be negative")
    # RFC 8291 §4: one record only, and rs larger than plaintext + delimiter + padding + tag.
    if record_size <= len(plaintext) + 1 + padding + TAG_LENGTH or record_size >= 2**32:
        raise ValueError(f"{len(plaintext)} bytes do not fit one record of {record_size}")
    if as_private is None:
        as_private = ec.generate_private_key(ec.SECP256R1())
    try:
        keys = derive_keys(as_private, ua_public, auth_secret, salt)
    except ValueError as exc:  # a point not on the curve: refuse rather than agree with it
        raise ValueError(f"p256dh is not a valid P-256 public key: {exc}") from exc
    # 0x02 marks the last (here: only) record; any padding follows it as zeros.
    record = plaintext + b"\x02" + b"\x00" * padding
    ciphertext = AESGCM(keys.cek).encrypt(keys.nonce, record, None)
    as_public = public_key_bytes(as_private.public_key())
    header = salt + struct.pack("!IB", record_size, len(as_public)) + as_public
    return header + ciphertext


def audience(endpoint: str) -> str:
    """The origin of a push endpoint (RFC 8292 §2: the JWT's aud): scheme://host[:port]."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"push endpoint is not an http(s) URL: {endpoint!r}")
    host = parts.hostname
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    port = parts.port
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_subject(subject: str) -> str:
    """RFC 8292 §2.1: the contact is a mailto: or https: URI; anything else is refused."""
    if not subject.startswith(("mailto:", "https:")):
        raise ValueError(f"VAPID subject must be a mailto: or https: URI, not {subject!r}")
    return subject


class VapidKeys:
    """The application server's P-256 key pair, and the VAPID tokens it signs (RFC 8292).

    Tokens are cached per (audience, subject) and reused until an hour before they expire,
    so a burst of sends to one push service signs once.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("VAPID needs a P-256 key")
        self.private_key = private_key
        self.public_key_bytes = public_key_bytes(private_key.public_key())
        self._tokens: dict[tuple[str, str], tuple[str, int]] = {}

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes | str) -> VapidKeys:
        data = pem.encode() if isinstance(pem, str) else pem
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("VAPID private key must be an EC (P-256) key")
        return cls(key)

    @classmethod
    def load(cls, value: str) -> VapidKeys:
        """From the TIDINGS_VAPID_PRIVATE_KEY setting: PEM text, or the path of a PEM file."""
        if value.lstrip().startswith("-----BEGIN"):
            return cls.from_pem(value)
        return cls.from_pem(Path(value).expanduser().read_bytes())

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM: keep it as secret as any other credential."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key_b64url(self) -> str:
        """What browsers pass as `applicationServerKey` to `pushManager.subscribe`."""
        return b64url_encode(self.public_key_bytes)

    def token(self, endpoint: str, subject: str, now: float) -> str:
        """An ES256 JWT for the endpoint's origin, reused while it has an hour or more left."""
        aud = audience(endpoint)
        cached = self._tokens.get((aud, subject))
        if cached is not None and cached[1] - now > TOKEN_REFRESH_MARGIN:
            return cached[0]
        exp = int(now) + TOKEN_LIFETIME
        claims = {"aud": aud, "exp": exp, "sub": check_subject(subject)}
        token = jwt.encode(claims, self.private_key, algorithm="ES256", headers={"typ": "JWT"})
        self._tokens[(aud, subject)] = (token, exp)
        return token

    def authorization(self, endpoint: str, subject: str, now: float) -> str:
        """The Authorization header value: `vapid t=<jwt>, k=<public key>` (RFC 8292 §3)."""
        return f"vapid t={self.token(endpoint, subject, now)}, k={self.public_key_b64url}"
