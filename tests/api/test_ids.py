"""Identifiers: the shapes clients and couriers rely on, from the table-driven encoders."""

from __future__ import annotations

import re
import time

import pytest

from logistics.domain import ids


def _reference_crockford(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(ids._CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def test_ulid_is_the_48_bit_time_then_80_random_bits_in_crockford_base32(monkeypatch: pytest.MonkeyPatch) -> None:
    ms = 1_795_000_000_123
    random_part = bytes(range(1, 11))
    monkeypatch.setattr(ids.time, "time_ns", lambda: ms * 1_000_000 + 999)
    monkeypatch.setattr(ids.os, "urandom", lambda n: random_part[:n])
    value = ids.ulid()
    monkeypatch.undo()
    assert value == _reference_crockford(ms, 10) + _reference_crockford(int.from_bytes(random_part, "big"), 16)


def test_ulids_sort_by_time_and_do_not_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time_ns()
    monkeypatch.setattr(ids.time, "time_ns", lambda: now)
    first = ids.ulid()
    monkeypatch.setattr(ids.time, "time_ns", lambda: now + 1_000_000)  # a millisecond later
    later = [ids.ulid() for _ in range(1000)]
    assert all(first < u for u in later)
    assert len(set(later)) == 1000
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", u) for u in later)
    assert re.fullmatch(r"shp_[0-9A-Z]{26}", ids.shipment_id())


def test_tracking_codes_are_13_unambiguous_symbols() -> None:
    codes = {ids.tracking_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(re.fullmatch(r"[23456789A-HJKMNP-Z]{13}", c) for c in codes)
    # every position takes every symbol: no position is stuck at a constant
    for position in range(13):
        assert len({c[position] for c in codes}) == 31


def test_verification_codes_and_request_ids() -> None:
    codes = [ids.verification_code() for _ in range(2000)]
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(set(codes)) > 1900
    request_ids = {ids.request_id() for _ in range(100)}
    assert len(request_ids) == 100 and all(re.fullmatch(r"[0-9a-f]{32}", r) for r in request_ids)
