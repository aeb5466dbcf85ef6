"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Tracking codes are read aloud and typed by couriers: no 0/O, 1/I/L confusion.
_TRACKING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# Two symbols per table lookup: encoding is a dozen lookups instead of a Python loop of shifts per symbol.
_CROCKFORD_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # 10 bits → 2 symbols
_TRACKING_PAIRS = tuple(a + b for a in _TRACKING_ALPHABET for b in _TRACKING_ALPHABET)  # 0..960 → 2 symbols
_TRACKING_SPACE = 31**13


def request_id() -> str:
    """32 hex digits (128 random bits) for a request that brought no X-Request-ID of its own."""
    return os.urandom(16).hex()


def ulid() -> str:
    """26 characters, sortable by creation time (48-bit ms) then 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    p = _CROCKFORD_PAIRS
    # 26 symbols of 5 bits = 130 bits: the same text as encoding the 48-bit time in 10 symbols and the random
    # part in 16, most significant first.
    return "".join(
        (
            p[value >> 120],
            p[value >> 110 & 1023],
            p[value >> 100 & 1023],
            p[value >> 90 & 1023],
            p[value >> 80 & 1023],
            p[value >> 70 & 1023],
            p[value >> 60 & 1023],
            p[value >> 50 & 1023],
            p[value >> 40 & 1023],
            p[value >> 30 & 1023],
            p[value >> 20 & 1023],
            p[value >> 10 & 1023],
            p[value & 1023],
        )
    )


def shipment_id() -> str:
    return "shp_" + ulid()


def client_id() -> str:
    return "cli_" + ulid()


def key_id() -> str:
    return "key_" + ulid()


def tracking_code() -> str:
    """13 symbols of a 31-letter alphabet (≈ 64 random bits): unguessable for a public URL."""
    # 96 random bits reduced modulo 31**13 (≈ 2**64.4): the bias is below 2**-31, far under any guessing gain.
    value = int.from_bytes(os.urandom(12), "big") % _TRACKING_SPACE
    out = []
    for _ in range(6):
        value, pair = divmod(value, 961)
        out.append(_TRACKING_PAIRS[pair])
    out.append(_TRACKING_ALPHABET[value])  # value < 31 after six pairs
    return "".join(out)


def verification_code() -> str:
    """The 6-digit 取件验证码 the recipient tells the courier at hand-over."""
    # 64 random bits modulo 10**6: the bias is below 2**-44, nothing a guesser can use.
    return f"{int.from_bytes(os.urandom(8), 'big') % 1_000_000:06d}"


def api_key() -> str:
    return "lgk_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # A 256-bit random key needs no slow KDF: SHA-256 is irreversible for it and keeps auth a fast lookup.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
