"""What the parcel book draws for a parcel, on its own: who signs, failed attempts, refusals, returns, failed door
pickups and the booked pickup window — with a seeded rng, so every history here is reproducible."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sim_fixtures import make_order

from carriers.ems.codes import reason_for
from carriers.simulator.faults import SIGNER_CLASSES, ParcelSettings
from carriers.simulator.parcels import (
    CODE_CHECKED,
    PLACEHOLDERS,
    REASONS,
    SIGNER_TEXTS,
    ParcelBook,
    SimClock,
)
from carriers.simulator.wire import BEIJING, parse_time

NOW = datetime(2026, 12, 4, 16, 30, 0, tzinfo=BEIJING)
TOMORROW_9 = "2026-12-05 09:00:00"
TOMORROW_12 = "2026-12-05 12:00:00"


def _book(seed: int = 17, **settings: Any) -> ParcelBook:
    return ParcelBook(random.Random(seed), settings=ParcelSettings(**settings))


def intake_order(order_no: str = "shp_01JDA3K9PZ8V6X2M4T7R1N5B3C", **changes: Any) -> dict[str, Any]:
    """An applicant's materials collected at home tomorrow morning, for the hall (no safety code)."""
    order = make_order(order_no, pickupPreBeginTime=TOMORROW_9, pickupPreEndTime=TOMORROW_12, **changes)
    order.pop("receiverSafetyCode")
    order["sender"], order["receiver"] = order["receiver"], order["sender"]
    return order


def delivery_order(order_no: str, *, code: bool = False) -> dict[str, Any]:
    """A licence handed in at the post office counter (no window), with or without a 取件验证码."""
    order = make_order(order_no, pickupType="0", pickupPreBeginTime="", pickupPreEndTime="")
    if not code:
        order.pop("receiverSafetyCode")
    return order


def history(book: ParcelBook, order: dict[str, Any], now: datetime = NOW) -> list[dict[str, str]]:
    parcel, _ = book.create(order, now)
    return book.tick(50, now, parcel.waybill_no)


def codes(events: list[dict[str, str]]) -> list[str]:
    return [e["opCode"] for e in events]


# -- the booked window ------------------------------------------------------------------------------------------


def test_door_pickup_is_stamped_inside_the_booked_window_even_when_ordered_the_day_before() -> None:
    book = _book(failed_attempt_rate=0.0)
    events = history(book, intake_order())
    collected = parse_time(events[0]["opTime"])
    assert events[0]["opCode"] == "203"
    assert parse_time(TOMORROW_9) <= collected <= parse_time(TOMORROW_9) + timedelta(minutes=45)
    assert all(parse_time(e["opTime"]) > collected for e in events[1:])


def test_automatic_clock_holds_the_pickup_until_the_window_opens_at_the_clocks_speed() -> None:
    book = _book()
    parcel, _ = book.create(intake_order(), NOW)
    assert parcel.not_before is not None
    book.schedule(parcel, mono=100.0, delay=0.0)
    # 3600 simulated seconds per second: the window, 16.5 h and a bit away, is about 16.5 s of real time away.
    assert book.due(100.0, NOW, step_seconds=1.0, speed=3600.0) == []
    wait = (parcel.not_before - NOW).total_seconds() / 3600.0
    assert book.next_due() == pytest.approx(100.0 + wait)
    assert book.due(100.0 + wait - 0.5, NOW + timedelta(hours=16), 1.0, 3600.0) == []
    [collected] = book.due(100.0 + wait, parcel.not_before, 1.0, 3600.0)
    assert (collected["opCode"], parse_time(collected["opTime"])) == ("203", parcel.not_before)


def test_a_counter_drop_off_has_no_window_to_wait_for() -> None:
    book = _book(failed_attempt_rate=0.0)
    events = history(book, delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5B4D"))
    assert parse_time(events[0]["opTime"]) == NOW


def test_sim_clock_runs_at_its_speed_and_jumps_only_forward() -> None:
    mono = [0.0]
    clock = SimClock(lambda: NOW + timedelta(seconds=mono[0]), lambda: mono[0])
    clock.set_speed(60.0)
    mono[0] = 10.0
    assert clock.now() == NOW + timedelta(minutes=10)
    clock.set_speed(1.0)
    mono[0] = 20.0
    assert clock.now() == NOW + timedelta(minutes=10, seconds=10)
    clock.advance_to(NOW)  # in the past: ignored
    assert clock.now() == NOW + timedelta(minutes=10, seconds=10)
    clock.advance_to(parse_time(TOMORROW_9))
    assert clock.now() == parse_time(TOMORROW_9)


# -- failed attempts, refusals, returns -------------------------------------------------------------------------


def test_a_refusal_ends_delivery_at_once_and_the_parcel_travels_back_to_the_sender() -> None:
    book = _book(refusal_rate=1.0, failed_attempt_rate=0.0, reason_fields_rate=0.0)
    order = delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5B5E")
    order["receiver"].update(city="洛阳市", county="涧西区", address="南昌路街道天津路12号")
    events = history(book, order)
    assert codes(events) == ["203", "305", "954", "989", "954", "989", "306", "702", "705"] + ["708"] * 4 + ["711"]
    refusal = events[8]
    assert refusal["opDesc"] == "未妥投,原因:收件人拒收,邮件将退回寄件人"
    assert reason_for(refusal["opDesc"]) == "104"
    back = events[9:]
    assert all(e["opName"] == "退回" for e in back[:-1])
    assert back[0]["opDesc"].startswith("邮件退回中,原因:拒收,已离开【洛阳市涧西区揽投部】")
    assert [e["opOrgName"] for e in back] == ["洛阳市涧西区揽投部", "洛阳中心", "郑州中心"] + ["郑州市上街区揽投部"] * 2
    assert (back[-1]["opName"], back[-1]["opDesc"].split(",投递员")[0]) == ("退回妥投", "退回邮件已妥投,寄件人签收")
    parcel = book.by_waybill[events[0]["waybillNo"]]
    assert parcel.state == "returned"
    assert {k: parcel.chosen[k] for k in ("signer_class", "attempts", "failure_reasons", "refused", "returned")} == {
        "signer_class": None,
        "attempts": 1,
        "failure_reasons": ["104"],
        "refused": True,
        "returned": True,
    }


def test_after_the_last_failed_attempt_the_parcel_is_returned() -> None:
    book = _book(undeliverable_rate=1.0, failed_attempt_rate=0.0, attempts=3)
    events = history(book, delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5B6F"))
    assert codes(events)[5:] == ["702", "705", "702", "705", "702", "705", "708", "708", "708", "711"]
    failed = [e for e in events if e["opCode"] == "705"]
    assert ["将再次投递" in e["opDesc"] for e in failed] == [True, True, False]
    assert "邮件将退回寄件人" in failed[-1]["opDesc"]
    chosen = book.by_waybill[events[0]["waybillNo"]].chosen
    assert (chosen["attempts"], chosen["returned"], chosen["refused"]) == (3, True, False)
    assert "104" not in chosen["failure_reasons"]


def test_one_failed_attempt_then_delivered_when_attempts_remain() -> None:
    book = _book(failed_attempt_rate=1.0)
    events = history(book, delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5B7G"))
    assert codes(events)[-4:] == ["702", "705", "702", "704"]
    chosen = book.by_waybill[events[0]["waybillNo"]].chosen
    assert (chosen["attempts"], chosen["returned"]) == (1, False)
    assert chosen["signer_class"] in SIGNER_CLASSES


def test_a_single_allowed_attempt_that_fails_is_the_last_one() -> None:
    book = _book(failed_attempt_rate=1.0, attempts=1)
    events = history(book, delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5B8H"))
    assert codes(events)[-3:] == ["708", "708", "711"]


def test_failed_attempts_carry_reason_fields_on_about_half_and_the_wording_names_the_reason_otherwise() -> None:
    book = _book(failed_attempt_rate=1.0)
    failed = [e for n in range(400) for e in history(book, delivery_order(f"shp_{n:026d}")) if e["opCode"] == "705"]
    with_fields = [e for e in failed if "reasonCode" in e]
    assert 0.4 <= len(with_fields) / len(failed) <= 0.6
    for event in with_fields:
        assert event["reasonDesc"] == REASONS[event["reasonCode"]].desc
        assert "未能妥投" in event["opDesc"]
    for event in failed:
        if "reasonCode" not in event:
            assert reason_for(event["opDesc"]) is not None or "原因:其他" in event["opDesc"]
    seen = Counter(e.get("reasonCode") or reason_for(e["opDesc"]) or "130" for e in failed)
    assert set(seen) == {"101", "102", "103", "113", "115", "118", "124", "127", "130"}
    assert seen.most_common(1)[0][0] == "103"  # the default mix: mostly nobody at home


@pytest.mark.parametrize("code", sorted(REASONS))
def test_every_reason_is_worded_so_that_our_parser_reads_the_same_code(code: str) -> None:
    reason = REASONS[code]
    expected = {None, "130"} if code == "130" else {code}  # 130 (other) has no words of its own
    texts = [reason.attempt_text.format(next="将再次投递"), f"邮件退回中,原因:{reason.desc}"]
    if reason.pickup_text:
        texts += [reason.pickup_text, f"揽收未成功,订单已作废,原因:{reason.pickup_desc}"]
    for text in texts:
        assert reason_for(text) in expected, text


# -- who signs --------------------------------------------------------------------------------------------------


def test_signer_shares_are_roughly_honoured_over_many_parcels() -> None:
    shares = {"addressee": 0.3, "family": 0.2, "unit_mailroom": 0.15, "locker_or_station": 0.2, "other": 0.1}
    book = _book(failed_attempt_rate=0.0, signers={**shares, "unknown": 0.05})
    for n in range(2000):
        book.create(delivery_order(f"shp_{n:026d}"), NOW)
    drawn = Counter(p.chosen["signer_class"] for p in book.by_order.values())
    for signer_class, share in {**shares, "unknown": 0.05}.items():
        assert abs(drawn[signer_class] / 2000 - share) < 0.035, (signer_class, drawn)


def test_the_704_wording_is_one_of_the_texts_of_the_class_drawn() -> None:
    book = _book(failed_attempt_rate=0.0, signers=dict.fromkeys(SIGNER_CLASSES, 1 / 6))
    for n in range(300):
        events = history(book, delivery_order(f"shp_{n:026d}"))
        parcel = book.by_waybill[events[0]["waybillNo"]]
        delivered = events[-1]
        assert (delivered["opCode"], delivered["opName"]) == ("704", "投递结果反馈-妥投")
        texts = SIGNER_TEXTS[(parcel.chosen["signer_class"], False)]
        assert any(_fits(template, delivered["opDesc"]) for template in texts), delivered["opDesc"]
        assert CODE_CHECKED not in delivered["opDesc"]


def test_a_code_protected_parcel_is_signed_by_the_addressee_or_family_and_says_the_code_was_checked() -> None:
    # Even when lockers and mail rooms are what most parcels get.
    book = _book(failed_attempt_rate=0.0, signers={"locker_or_station": 0.8, "unit_mailroom": 0.1, "family": 0.1})
    drawn: Counter[str] = Counter()
    for n in range(300):
        events = history(book, delivery_order(f"shp_{n:026d}", code=True))
        chosen = book.by_waybill[events[0]["waybillNo"]].chosen
        drawn[chosen["signer_class"]] += 1
        assert CODE_CHECKED in events[-1]["opDesc"]
        assert chosen["verified_by_code"] is True
    assert set(drawn) == {"family"}
    book = _book(failed_attempt_rate=0.0, signers={"locker_or_station": 1.0})
    events = history(book, delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5B9J", code=True))
    assert book.by_waybill[events[0]["waybillNo"]].chosen["signer_class"] == "addressee"
    assert events[-1]["opDesc"].startswith(("已签收,本人签收(已核验收件人安全码)", "投递并签收,签收人:本人收,已核验"))


def test_every_wording_renders_with_the_known_placeholders() -> None:
    fill = dict.fromkeys(PLACEHOLDERS, "X")
    for (signer_class, checked), texts in SIGNER_TEXTS.items():
        for template in texts:
            text = template.format_map(fill)
            assert (CODE_CHECKED in text) == checked
            assert "{" not in text, (signer_class, template)
    for reason in REASONS.values():
        assert "{" not in reason.attempt_text.format_map(fill)


# -- door pickups that fail -------------------------------------------------------------------------------------


def test_door_pickups_that_fail_every_time_void_the_order_with_the_reason() -> None:
    book = _book(pickup_failure_rate=1.0, pickup_attempts=2, reason_fields_rate=0.0)
    events = history(book, intake_order())
    assert codes(events) == ["206", "206", "207"]
    assert [e["opName"] for e in events] == ["揽收失败", "揽收失败", "作废"]
    assert events[0]["opDesc"].endswith(",将再次上门揽收") and not events[1]["opDesc"].endswith("再次上门揽收")
    assert events[2]["opDesc"].startswith("揽收未成功,订单已作废,原因:")
    assert all(parse_time(e["opTime"]) >= parse_time(TOMORROW_9) for e in events)
    parcel = book.by_waybill[events[0]["waybillNo"]]
    assert parcel.state == "voided"
    assert (parcel.chosen["pickup_attempts"], parcel.chosen["voided"]) == (2, True)
    last = REASONS[parcel.chosen["pickup_failure_reasons"][-1]]
    assert events[2]["opDesc"].endswith(last.pickup_desc)


def test_a_failed_pickup_is_retried_and_an_order_not_collected_yet_can_still_be_cancelled() -> None:
    book = _book(seed=5, pickup_failure_rate=0.5, pickup_attempts=2)
    outcomes: Counter[tuple[int, bool]] = Counter()
    for n in range(400):
        parcel, _ = book.create(intake_order(f"shp_{n:026d}"), NOW)
        outcomes[(parcel.chosen["pickup_attempts"], parcel.chosen["voided"])] += 1
    # Each attempt fails half the time: about 1/2 collected at once, 1/4 on the second try, 1/4 void.
    assert 160 <= outcomes[(0, False)] <= 240 and 70 <= outcomes[(1, False)] <= 130 and 70 <= outcomes[(2, True)] <= 130
    retried = next(p for p in book.by_order.values() if p.chosen["pickup_attempts"] == 1)
    assert codes([book.step(retried, NOW) or {}]) == ["206"]
    assert book.cancel(retried.order_no, None, "申请人改为窗口递交").state == "cancelled"


def test_deliveries_handed_in_at_the_counter_never_fail_a_pickup() -> None:
    book = _book(pickup_failure_rate=1.0, failed_attempt_rate=0.0)
    assert codes(history(book, delivery_order("shp_01JDA3K9PZ8V6X2M4T7R1N5BAK")))[0] == "203"


def _fits(template: str, text: str) -> bool:
    """Whether ``text`` is ``template`` with its placeholders filled in (fixed parts in order)."""
    pattern = re.escape(template)
    for name in PLACEHOLDERS:
        pattern = pattern.replace(re.escape("{" + name + "}"), ".+?")
    return re.fullmatch(pattern, text) is not None
