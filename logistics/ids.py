"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Tracking codes are read aloud and typed by couriers: no 0/O, 1/I/L confusion.
_TRACKING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _base32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def ulid() -> str:
    """26 characters, sortable by creation time (48-bit ms) then 80 random bits."""
    ms = time.time_ns() // 1_000_000
    return _base32(ms, 10) + _base32(int.from_bytes(os.urandom(10), "big"), 16)


def shipment_id() -> str:
    return "shp_" + ulid()


def client_id() -> str:
    return "cli_" + ulid()


def key_id() -> str:
    return "key_" + ulid()


def tracking_code() -> str:
    """13 symbols of a 31-letter alphabet (≈ 64 random bits): unguessable for a public URL."""
    # 96 random bits reduced modulo 31**13 (≈ 2**64.4): the bias is below 2**-31, far under any guessing gain.
    value = int.from_bytes(os.urandom(12), "big") % 31**13
    out = []
    for _ in range(13):
        value, digit = divmod(value, 31)
        out.append(_TRACKING_ALPHABET[digit])
    return "".join(out)


def verification_code() -> str:
    """The 6-digit 取件验证码 the recipient tells the courier at hand-over."""
    return f"{secrets.randbelow(1_000_000):06d}"


def api_key() -> str:
    return "lgk_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # A 256-bit random key needs no slow KDF: SHA-256 is irreversible for it and keeps auth a fast lookup.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
