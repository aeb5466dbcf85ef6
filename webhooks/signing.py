"""Standard Webhooks signatures (https://www.standardwebhooks.com/), symmetric ``v1`` scheme only.

The receiving approval systems verify with the reference ``standardwebhooks`` libraries, so everything here
follows the published spec byte for byte: the signed content is ``"{id}.{timestamp}.{body}"``, the MAC is
HMAC-SHA256 keyed with the base64-decoded part of a ``whsec_`` secret, and the header carries
space-separated ``v1,<base64>`` entries so that several secrets can sign during a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "SECRET_PREFIX",
    "VerificationError",
    "decode_secret",
    "generate_secret",
    "headers",
    "sign",
    "verify",
]

SECRET_PREFIX = "whsec_"
_SIGNATURE_VERSION = "v1"
# The spec asks for 24..64 bytes; 32 matches the SHA-256 block-size guidance and the reference libraries.
_SECRET_BYTES = 32
_MIN_SECRET_BYTES = 24
_MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE_SECONDS = 5 * 60
# Keyed HMAC states by secret: decoding the secret and keying a new HMAC per delivery is a real share of the
# signing cost. Bounded, because rotated-out secrets should not stay in memory for ever.
_KEY_CACHE_SIZE = 256
_keyed: dict[str, hmac.HMAC] = {}
# Python's \s is exactly str.isspace(), so this refuses what the per-character check refused, in one C call.
_BAD_ID_CHAR = re.compile(r"[\s\x00-\x1f\x7f]")


class VerificationError(ValueError):
    """A delivery did not carry a valid, fresh signature."""


def generate_secret() -> str:
    """A new endpoint secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a secret; raises ``ValueError`` for anything the receivers could not decode.

    Secrets without the prefix are accepted because the reference libraries accept them too, but the length
    rule is enforced: a short key would be accepted by receivers yet weaken every signature made with it.
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not _MIN_SECRET_BYTES <= len(key) <= _MAX_SECRET_BYTES:
        raise ValueError(
            f"webhook secret must decode to {_MIN_SECRET_BYTES}..{_MAX_SECRET_BYTES} bytes, got {len(key)}"
        )
    return key


def _check_msg_id(msg_id: str) -> None:
    # The id travels in a header and is part of the signed content: control characters or whitespace would
    # allow header injection or make "id.timestamp.body" ambiguous for the receiver.
    if not msg_id or _BAD_ID_CHAR.search(msg_id) is not None:
        raise ValueError("webhook id must be non-empty and contain no whitespace or control characters")


def _keyed_hmac(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 state keyed with ``secret`` and fed nothing yet; callers copy it, never update it."""
    state = _keyed.get(secret)
    if state is None:
        state = hmac.new(decode_secret(secret), digestmod=hashlib.sha256)
        if len(_keyed) >= _KEY_CACHE_SIZE:
            _keyed.clear()
        _keyed[secret] = state
    return state


def _mac(keyed: hmac.HMAC, msg_id: str, timestamp: int | str, body: bytes) -> str:
    # Verification passes the header text itself: the signed content is what was on the wire.
    mac = keyed.copy()
    mac.update(f"{msg_id}.{timestamp}.".encode())
    mac.update(body)
    return base64.b64encode(mac.digest()).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` header value: one ``v1,<sig>`` per secret, space-separated."""
    if isinstance(secrets, str):
        # A bare string is a Sequence[str] too; signing with each of its characters would be a silent bug.
        raise TypeError("secrets must be a sequence of secrets, not a single string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    _check_msg_id(msg_id)
    timestamp = int(timestamp)
    return " ".join(f"{_SIGNATURE_VERSION},{_mac(_keyed_hmac(s), msg_id, timestamp, body)}" for s in secrets)


def headers(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """All headers a delivery needs, signature included."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(msg_id, timestamp, body, secrets),
        "content-type": "application/json",
    }


def _header(hdrs: Mapping[str, str], name: str) -> str:
    # Callers hand us plain dicts as well as case-insensitive multidicts.
    value = hdrs.get(name)
    if value is None:
        for key, val in hdrs.items():
            if key.lower() == name:
                return val
        raise VerificationError(f"missing {name} header")
    return value


def verify(
    body: bytes,
    hdrs: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raise ``VerificationError`` unless one ``v1`` signature matches one secret within the time window.

    Meant for our own tests and tools; receivers use the reference library.
    """
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not a single string")
    msg_id = _header(hdrs, "webhook-id")
    ts_text = _header(hdrs, "webhook-timestamp")
    sig_text = _header(hdrs, "webhook-signature")
    try:
        timestamp = int(ts_text)
    except ValueError as exc:
        raise VerificationError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    # Both directions matter: an old timestamp is a replay, a future one could be replayed later.
    if timestamp < current - tolerance_seconds:
        raise VerificationError("message timestamp too old")
    if timestamp > current + tolerance_seconds:
        raise VerificationError("message timestamp too new")

    offered: list[bytes] = []
    for entry in sig_text.split():
        version, sep, value = entry.partition(",")
        if sep and version == _SIGNATURE_VERSION:
            offered.append(value.encode("ascii", "replace"))
    if not offered:
        raise VerificationError("no v1 signature present")
    for secret in secrets:
        expected = _mac(_keyed_hmac(secret), msg_id, ts_text, body).encode("ascii")
        # Compare against every offered signature without short-circuiting on content.
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return
    raise VerificationError("no matching signature")
