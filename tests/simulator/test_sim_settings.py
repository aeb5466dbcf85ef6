"""The parcel settings and the clock through /admin/faults: validated whole, visible in the JSON, and acted on by
the running simulator (a refused parcel travels back; a compressed clock brings tomorrow's pickup window close)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sim_fixtures import Harness, Receiver, make_order

from carriers.simulator.config import SimConfig
from carriers.simulator.faults import ParcelSettings, clock_speed
from carriers.simulator.wire import format_time, parse_time

from support import eventually

SimFactory = Callable[..., Awaitable[Harness]]


def test_defaults_keep_one_failed_attempt_in_five_and_the_old_signer_mix() -> None:
    settings = ParcelSettings().to_json()
    assert settings["delivery"] | {"reasons": None} == {
        "failed_attempt_rate": 0.2,
        "refusal_rate": 0.0,
        "undeliverable_rate": 0.0,
        "attempts": 3,
        "reasons": None,
        "reason_fields_rate": 0.5,
    }
    assert sum(settings["delivery"]["reasons"].values()) == pytest.approx(1.0)
    assert settings["signers"] == {
        "addressee": 0.5,
        "family": 0.25,
        "unit_mailroom": 0.25,
        "locker_or_station": 0.0,
        "other": 0.0,
        "unknown": 0.0,
    }
    assert settings["pickup"] == {"failure_rate": 0.0, "attempts": 2}


def test_a_mix_replaces_the_old_one_and_is_stored_as_shares() -> None:
    settings = ParcelSettings().updated({"signers": {"locker_or_station": 3, "other": 1}})
    assert settings.signers == {
        "addressee": 0.0,
        "family": 0.0,
        "unit_mailroom": 0.0,
        "locker_or_station": 0.75,
        "other": 0.25,
        "unknown": 0.0,
    }
    reasons = ParcelSettings().updated({"delivery": {"reasons": {"103": 1, "127": 1}}}).reasons
    assert (reasons["103"], reasons["127"], reasons["101"]) == (0.5, 0.5, 0.0)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"delivery": {"refusal_rate": 1.5}}, "delivery.refusal_rate must be a number within [0, 1]"),
        ({"delivery": {"refusal_rate": 0.5, "undeliverable_rate": 0.4}}, "add up to more than 1"),
        ({"delivery": {"attempts": 0}}, "delivery.attempts must be an integer 1..10"),
        ({"delivery": {"attempts": 2.5}}, "delivery.attempts must be an integer"),
        ({"delivery": {"reasons": {"104": 1}}}, "104 (refusal) is set with delivery.refusal_rate"),
        ({"delivery": {"reasons": {"199": 1}}}, "unknown keys in delivery.reasons: 199"),
        ({"delivery": {"reasons": {"103": 0}}}, "needs at least one positive weight"),
        ({"delivery": {"retries": 2}}, "unknown keys in delivery: retries"),
        ({"signers": {"neighbour": 1}}, "unknown keys in signers: neighbour"),
        ({"signers": {"addressee": -1}}, "signers.addressee must be a non-negative number"),
        ({"signers": {"addressee": float("inf")}}, "must be finite"),
        ({"signers": "addressee"}, "signers must be an object"),
        ({"pickup": {"failure_rate": True}}, "pickup.failure_rate must be a number"),
        ({"pickup": {"attempts": 11}}, "pickup.attempts must be an integer 1..10"),
    ],
)
def test_bad_parcel_settings_are_refused_with_a_reason(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        ParcelSettings().updated(patch)
    assert message in str(refused.value)


@pytest.mark.parametrize("speed", [0, 0.5, -3, "fast", True, 2_000_000])
def test_the_clock_speed_is_at_least_real_time_and_bounded(speed: Any) -> None:
    with pytest.raises(ValueError, match=r"clock\.speed"):
        clock_speed({"speed": speed})


def test_the_clock_accepts_its_own_json_back() -> None:
    assert clock_speed({"speed": 3600, "now": "2026-12-04 16:30:00"}) == 3600.0
    assert clock_speed({"now": "2026-12-04 16:30:00"}) is None


async def test_the_clock_can_start_compressed(make_sim: SimFactory) -> None:
    sim = await make_sim(clock_speed=3600)
    assert (await sim.admin("GET", "/admin/faults"))["clock"]["speed"] == 3600.0
    with pytest.raises(ValueError, match=r"clock\.speed"):
        SimConfig(clock_speed=0.5)


async def test_bad_settings_are_a_400_and_change_nothing(sim: Harness) -> None:
    before = await sim.admin("GET", "/admin/faults")
    resp = await sim.client.put(
        "/admin/faults",
        json={"errors": {"s_code": 0.1}, "delivery": {"refusal_rate": 0.3}, "clock": {"speed": 0}},
    )
    assert resp.status == 400
    assert "clock.speed" in (await resp.json())["error"]
    after = await sim.admin("GET", "/admin/faults")
    assert (after["errors"], after["delivery"], after["clock"]["speed"]) == (
        before["errors"],
        before["delivery"],
        1.0,
    )


async def test_settings_are_visible_and_survive_clearing_the_faults(sim: Harness) -> None:
    patch = {"delivery": {"refusal_rate": 0.25, "attempts": 2}, "pickup": {"failure_rate": 0.1}, "clock": {"speed": 60}}
    shown = await sim.faults(patch)
    assert (shown["delivery"]["refusal_rate"], shown["delivery"]["attempts"]) == (0.25, 2)
    assert (shown["pickup"]["failure_rate"], shown["clock"]["speed"]) == (0.1, 60.0)
    cleared = await sim.admin("DELETE", "/admin/faults")
    assert (cleared["delivery"]["refusal_rate"], cleared["clock"]["speed"]) == (0.25, 60.0)
    # The whole JSON can be sent back as it is.
    assert (await sim.faults(cleared))["delivery"] == cleared["delivery"]


async def test_a_refused_parcel_goes_back_to_the_hall_and_the_summary_says_so(sim: Harness) -> None:
    await sim.faults({"delivery": {"refusal_rate": 1.0, "failed_attempt_rate": 0.0, "reason_fields_rate": 1.0}})
    waybill = (await sim.create())["waybillNo"]
    events = await sim.tick(30)
    refusal = next(e for e in events if e["opCode"] == "705")
    assert (refusal["reasonCode"], refusal["reasonDesc"]) == ("104", "拒收")
    assert [e["opCode"] for e in events][-5:] == ["705", "708", "708", "708", "711"]
    _, _, track = await sim.call("040001", {"waybillNo": waybill, "direction": "0"})
    assert track["responseItems"][-5]["reasonCode"] == "104"
    parcel = await sim.admin("GET", f"/admin/parcels/{waybill}")
    assert parcel["state"] == "returned"
    assert (parcel["signer_class"], parcel["attempts"], parcel["refused"], parcel["returned"]) == (None, 1, True, True)
    assert parcel["failure_reasons"] == ["104"]
    listed = (await sim.admin("GET", "/admin/parcels"))["parcels"][0]
    assert (listed["state"], listed["refused"], listed["failure_reasons"]) == ("returned", True, ["104"])


async def test_a_compressed_clock_brings_the_booked_window_without_a_pickup_before_it(
    make_sim: SimFactory, receiver: Receiver
) -> None:
    sim = await make_sim(callback_url=receiver.url, step_seconds=0.05, failed_attempt_rate=0.0)
    await sim.faults({"clock": {"speed": 36000}})
    clock = parse_time((await sim.admin("GET", "/admin/faults"))["clock"]["now"])
    opens = (clock + timedelta(hours=3)).replace(minute=0, second=0)  # two to three simulated hours ahead
    order = make_order(pickupPreBeginTime=format_time(opens), pickupPreEndTime=format_time(opens + timedelta(hours=3)))
    waybill = (await sim.create(order))["waybillNo"]
    parcel = await sim.admin("GET", f"/admin/parcels/{waybill}")
    assert parcel["state"] == "ordered" and parse_time(parcel["pickupNotBefore"]) >= opens
    # A fraction of a second at ten simulated hours per second, where a real-time clock would take hours.
    collected = await receiver.next(timeout=5.0)
    assert collected.event["opCode"] == "203"
    assert parse_time(collected.event["opTime"]) >= opens
    rest = await receiver.take(6, timeout=5.0)
    assert [p.event["opCode"] for p in rest][-1] == "704"
    assert parse_time(rest[-1].event["opTime"]) > parse_time(collected.event["opTime"])


async def test_the_manual_clock_jumps_to_the_window_when_a_test_ticks_an_early_pickup(sim: Harness) -> None:
    clock = parse_time((await sim.admin("GET", "/admin/faults"))["clock"]["now"])
    opens = (clock + timedelta(days=1)).replace(hour=9, minute=0, second=0)
    order = make_order(pickupPreBeginTime=format_time(opens), pickupPreEndTime=format_time(opens.replace(hour=12)))
    await sim.create(order)
    [collected] = await sim.tick(1)
    assert parse_time(collected["opTime"]) >= opens
    # The simulator's clock moved with it, so no later event of any parcel is stamped before the pickup.
    assert parse_time((await sim.admin("GET", "/admin/faults"))["clock"]["now"]) >= parse_time(collected["opTime"])
    other = await sim.create(
        make_order("shp_01JDA3K9PZ8V6X2M4T7R1N5BCM", pickupType="0", pickupPreBeginTime="", pickupPreEndTime="")
    )
    [handed_in] = await sim.tick(1, waybill=other["waybillNo"])
    assert parse_time(handed_in["opTime"]) >= parse_time(collected["opTime"])


async def test_speeding_up_the_clock_later_brings_a_waiting_pickup_forward(
    make_sim: SimFactory, receiver: Receiver
) -> None:
    sim = await make_sim(callback_url=receiver.url, step_seconds=0.05, failed_attempt_rate=0.0)
    clock = parse_time((await sim.admin("GET", "/admin/faults"))["clock"]["now"])
    opens = (clock + timedelta(hours=3)).replace(minute=0, second=0)
    order = make_order(pickupPreBeginTime=format_time(opens), pickupPreEndTime=format_time(opens + timedelta(hours=2)))
    await sim.create(order)

    async def queued_for_hours() -> bool:
        due = sim.sim.book.next_due()
        return due is not None and due - sim.sim.mono() > 3600

    # At real time the pickup is hours away: the automatic clock has queued it for then.
    await eventually(queued_for_hours, timeout=5)
    await sim.faults({"clock": {"speed": 36000}})
    collected = await receiver.next(timeout=5.0)
    assert collected.event["opCode"] == "203"
    assert parse_time(collected.event["opTime"]) >= opens
