"""The parcel clock and the geography helpers on their own, without HTTP."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sim_fixtures import make_order

from carriers.simulator.config import SimConfig
from carriers.simulator.geo import Place, canonical_province, routing, split_address
from carriers.simulator.parcels import ParcelBook, ParcelError
from carriers.simulator.wire import BEIJING, parse_time

NOW = datetime(2026, 11, 26, 10, 12, 31, tzinfo=BEIJING)


def counter_order(order_no: str = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C") -> dict[str, Any]:
    """Handed in at the counter: no booked pickup window, so nothing waits for one."""
    return make_order(order_no, pickupType="0", pickupPreBeginTime="", pickupPreEndTime="")


def _book(rate: float = 0.0, seed: int = 1) -> ParcelBook:
    return ParcelBook(random.Random(seed), failed_attempt_rate=rate)


def test_create_is_idempotent_on_order_number() -> None:
    book = _book()
    first, new = book.create(make_order(), NOW)
    again, new_again = book.create(make_order(), NOW)
    assert (new, new_again) == (True, False)
    assert again is first
    assert len(book.by_waybill) == 1


def test_waybills_are_unique_13_digit_numbers_starting_with_1() -> None:
    book = _book()
    waybills = {book.create(make_order(f"shp_{n:026d}"), NOW)[0].waybill_no for n in range(500)}
    assert len(waybills) == 500
    assert all(len(w) == 13 and w.isdigit() and w.startswith("1") for w in waybills)


def test_times_strictly_increase_even_when_the_clock_does_not_move() -> None:
    book = _book(rate=1.0)
    parcel, _ = book.create(counter_order(), NOW)
    events = book.tick(20, NOW)
    times = [parse_time(e["opTime"]) for e in events]
    assert times[0] == NOW
    assert all(b > a for a, b in itertools.pairwise(times))
    assert events[-1]["opCode"] == "704"
    assert parcel.finished and parcel.state == "delivered"
    assert book.tick(1, NOW) == []


def test_a_failed_attempt_has_a_reason_and_is_followed_by_a_second_delivery() -> None:
    book = _book(rate=1.0)
    book.create(make_order(), NOW)
    codes = [e["opCode"] for e in book.tick(20, NOW)]
    assert codes == ["203", "305", "954", "989", "306", "702", "705", "702", "704"]


def test_roughly_the_configured_share_of_parcels_fail_once() -> None:
    book = _book(rate=0.2, seed=3)
    for n in range(400):
        book.create(make_order(f"shp_{n:026d}"), NOW)
    failed = sum(1 for p in book.by_order.values() if any(step["opCode"] == "705" for step in p.plan))
    assert 40 <= failed <= 120


def test_cancel_rules() -> None:
    book = _book()
    parcel, _ = book.create(make_order(), NOW)
    with pytest.raises(ParcelError) as missing:
        book.cancel("shp_nope", None, "")
    assert missing.value.code == "B03"
    book.create(make_order("shp_other"), NOW)
    with pytest.raises(ParcelError) as mismatch:
        book.cancel("shp_other", parcel.waybill_no, "")
    assert mismatch.value.code == "B03"
    book.step(parcel, NOW)
    with pytest.raises(ParcelError) as collected:
        book.cancel(None, parcel.waybill_no, "")
    assert collected.value.code == "B07"


def test_automatic_clock_emits_what_is_due() -> None:
    book = _book()
    parcel, _ = book.create(counter_order(), NOW)
    book.schedule(parcel, mono=100.0, delay=5.0)
    assert book.next_due() == 105.0
    assert book.due(104.9, NOW, step_seconds=2.0) == []
    assert [e["opCode"] for e in book.due(105.0, NOW, step_seconds=2.0)] == ["203"]
    # Falling behind (a slow loop) catches up with every step that came due, in order.
    assert [e["opCode"] for e in book.due(109.0, NOW + timedelta(seconds=4), 2.0)] == ["305", "954"]
    assert book.next_due() == 111.0
    book.tick(20, NOW)
    assert book.next_due() is None


def test_routing_uses_the_receivers_postcode_when_given() -> None:
    place = Place("河南省", "郑州市", "上街区")
    assert routing(place)["markDestinationName"] == "郑州上街 450"
    assert routing(place, "471000")["markDestinationName"] == "郑州上街 471"
    beijing = Place("北京市", "市辖区", "朝阳区")
    assert routing(beijing)["markDestinationName"] == "北京朝阳 100"
    assert beijing.station_name == "北京市朝阳区揽投部"


def test_province_names_full_and_short() -> None:
    assert canonical_province("河南") == "河南省"
    assert canonical_province("广西") == "广西壮族自治区"
    assert canonical_province("内蒙古自治区") == "内蒙古自治区"
    assert canonical_province("香港") == "香港特别行政区"
    assert canonical_province("火星") is None


def test_split_address_for_a_municipality() -> None:
    parts = split_address("北京市朝阳区建国路1号")
    assert (parts["prov"], parts["city"], parts["county"], parts["address"]) == (
        "北京市",
        "北京市",
        "朝阳区",
        "建国路1号",
    )


def test_config_checks_its_key_and_provinces() -> None:
    assert SimConfig(service_provinces=frozenset({"河南"})).service_provinces == frozenset({"河南省"})
    with pytest.raises(ValueError, match="16 bytes"):
        SimConfig(sign_key="c2hvcnQ=")
    with pytest.raises(ValueError, match="province"):
        SimConfig(service_provinces=frozenset({"火星"}))
    assert SimConfig(step_seconds=3).pickup_delay == 3
    assert SimConfig(step_seconds=3, pickup_delay_seconds=0).pickup_delay == 0


def test_automatic_clock_interleaves_parcels_by_due_time() -> None:
    book = _book()
    a, _ = book.create(counter_order("shp_a"), NOW)
    b, _ = book.create(counter_order("shp_b"), NOW)
    book.schedule(a, mono=0.0, delay=1.0)
    book.schedule(b, mono=0.5, delay=1.0)
    events = book.due(3.2, NOW, step_seconds=1.0)
    # a at 1, 2, 3 and b at 1.5, 2.5: merged in due order, not parcel by parcel.
    assert [(e["orderNo"], e["opCode"]) for e in events] == [
        ("shp_a", "203"),
        ("shp_b", "203"),
        ("shp_a", "305"),
        ("shp_b", "305"),
        ("shp_a", "954"),
    ]
    assert book.next_due() == 3.5
