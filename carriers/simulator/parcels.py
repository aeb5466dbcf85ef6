"""Parcels and their clock: a pure state machine, no HTTP, no tasks.

Every order gets its whole tracking history planned at creation (so a seed reproduces it) and the clock only
reveals the next planned event. Callers pass the times in: ``now`` (the simulated clock, Beijing) stamps
events, and ``mono`` (a monotonic reading) drives the automatic clock. A door pickup is never stamped before
its booked window opens (``Parcel.not_before``).

What is drawn for a parcel (signer, failed attempts, refusal, return, failed pickups) follows
``faults.ParcelSettings``; the EMS wording for it comes from the tables beside this module
(signer_texts.csv, reason_texts.csv), and ``Parcel.chosen`` keeps the draw for the inspection endpoint.
"""

from __future__ import annotations

import csv
import heapq
import io
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from carriers.simulator.faults import (
    CODE_CHECKED_CLASSES,
    REASON_CODES,
    REFUSED,
    SIGNER_CLASSES,
    ParcelSettings,
)
from carriers.simulator.geo import Place, canonical_province, routing
from carriers.simulator.wire import B_ALREADY_COLLECTED, B_MISSING, B_NOT_FOUND, format_time, parse_time

EVENT_FIELDS = (
    "waybillNo",
    "orderNo",
    "opCode",
    "opName",
    "opDesc",
    "opTime",
    "opOrgCode",
    "opOrgName",
    "opOrgProvName",
    "opOrgCity",
    "operatorNo",
    "operatorName",
)

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐"
_GIVEN = ("建国", "强", "磊", "洋", "伟", "芳", "敏", "静", "军", "杰", "娟", "涛", "明", "超", "秀英", "桂兰")
# Fillers for the place names inside signer texts; none of them may read as a signer word (家/门卫/驿站...).
ROADS = ("农业路", "济源路", "中原路", "建设路", "文化路", "花园路", "嵩山路", "淮河路")
VILLAGES = ("马固", "柿园", "峡窝", "东赵", "金华")

CODE_CHECKED = "已核验收件人安全码"  # EMS's courier checked the receiverSafetyCode (contract with carriers/ems)
PLACEHOLDERS = ("courier", "courier_phone", "receiver", "city", "county", "road", "number", "village", "next")
_AGAIN = "将再次投递"
_BACK = "邮件将退回寄件人"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    desc: str  # reasonDesc, and the reason in return texts
    attempt_text: str  # a 705's opDesc; {next} says what happens now
    pickup_desc: str  # "" when the reason never applies to a door pickup
    pickup_text: str


def _table(filename: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def _load_signer_texts() -> dict[tuple[str, bool], tuple[str, ...]]:
    texts: dict[tuple[str, bool], list[str]] = {}
    for row in _table("signer_texts.csv"):
        checked = row["code_checked"] == "yes"
        if row["class"] not in SIGNER_CLASSES or (checked and row["class"] not in CODE_CHECKED_CLASSES):
            raise ValueError(f"signer_texts.csv: bad class {row['class']!r} (code_checked={checked})")
        if (CODE_CHECKED in row["text"]) != checked:
            raise ValueError(f"signer_texts.csv: {row['text']!r} must say {CODE_CHECKED} exactly when code_checked")
        texts.setdefault((row["class"], checked), []).append(row["text"])
    needed = [(c, False) for c in SIGNER_CLASSES] + [(c, True) for c in CODE_CHECKED_CLASSES]
    missing = [key for key in needed if key not in texts]
    if missing:
        raise ValueError(f"signer_texts.csv: no text for {missing}")
    return {key: tuple(rows) for key, rows in texts.items()}


def _load_reasons() -> dict[str, Reason]:
    reasons = {
        row["code"]: Reason(row["code"], row["desc"], row["attempt_text"], row["pickup_desc"], row["pickup_text"])
        for row in _table("reason_texts.csv")
    }
    if set(reasons) != set(REASON_CODES):
        raise ValueError(f"reason_texts.csv: codes must be exactly {', '.join(REASON_CODES)}")
    return reasons


SIGNER_TEXTS: Mapping[tuple[str, bool], tuple[str, ...]] = _load_signer_texts()  # (class, code checked) → texts
REASONS: Mapping[str, Reason] = _load_reasons()
PICKUP_REASONS = tuple(code for code, reason in REASONS.items() if reason.pickup_text)


class ParcelError(Exception):
    """A request the parcel book refuses; ``code`` is the EMS retCode to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Parcel:
    waybill_no: str
    order_no: str
    order: dict[str, Any]
    routing: dict[str, str]
    plan: list[dict[str, str]]  # event templates without waybill, order or time
    created_at: datetime
    events: list[dict[str, str]] = field(default_factory=list)
    cancelled: bool = False
    cancel_reason: str = ""
    next_at: float | None = None  # monotonic due time on the automatic clock
    not_before: datetime | None = None  # the first step is a door pickup: not before the booked window opens
    chosen: dict[str, Any] = field(default_factory=dict)  # what the plan drew, for the inspection endpoint

    @property
    def collected(self) -> bool:
        return any(event["opCode"] == "203" for event in self.events)

    @property
    def finished(self) -> bool:
        return self.cancelled or len(self.events) >= len(self.plan)

    @property
    def state(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.finished:
            return {"704": "delivered", "711": "returned", "207": "voided"}.get(self.plan[-1]["opCode"], "finished")
        if not self.collected:
            return "ordered"
        if any(event["opCode"] == "708" for event in self.events):
            return "returning"
        return "in_transit"

    def summary(self) -> dict[str, Any]:
        return {
            "waybillNo": self.waybill_no,
            "logisticsOrderNo": self.order_no,
            "state": self.state,
            "createdTime": format_time(self.created_at),
            "cancelReason": self.cancel_reason,
            "pickupNotBefore": format_time(self.not_before) if self.not_before else None,
            **self.chosen,
            "events": list(self.events),
            "order": self.order,  # the order object as received, so tests can check what the client sent
            "remaining": [step["opCode"] for step in self.plan[len(self.events) :]] if not self.cancelled else [],
            **self.routing,
        }


class SimClock:
    """The simulator's clock: the wall clock, run ``speed`` times faster since the speed was set, plus jumps.

    Every event is stamped with it, so a compressed clock (tests, the chaos run) brings a booked pickup window
    closer without an event ever claiming a time before its window opened. It never runs backwards.
    """

    def __init__(self, now: Callable[[], datetime], mono: Callable[[], float]) -> None:
        self._now = now
        self._mono = mono
        self.speed = 1.0
        self._since = mono()
        self._ahead = 0.0  # seconds ahead of the wall clock when the speed was last set

    def ahead(self) -> float:
        return self._ahead + (self._mono() - self._since) * (self.speed - 1.0)

    def now(self) -> datetime:
        return self._now() + timedelta(seconds=self.ahead())

    def set_speed(self, speed: float) -> None:
        self._ahead = self.ahead()
        self._since = self._mono()
        self.speed = speed

    def advance_to(self, moment: datetime) -> None:
        """Jump forward to ``moment`` (the manual clock revealing a pickup in a window still to come)."""
        gap = (moment - self.now()).total_seconds()
        if gap > 0:
            self._ahead += gap

    def to_json(self) -> dict[str, Any]:
        return {"speed": self.speed, "now": format_time(self.now())}


def _place(party: dict[str, Any]) -> Place:
    prov = str(party.get("prov", ""))
    return Place(canonical_province(prov) or prov, str(party.get("city", "")), str(party.get("county", "")))


class ParcelBook:
    """All orders of one simulator, keyed by logisticsOrderNo (the idempotency key) and by waybill."""

    def __init__(
        self, rng: random.Random, failed_attempt_rate: float = 0.2, settings: ParcelSettings | None = None
    ) -> None:
        self._rng = rng
        # Read at each order, so a change (PUT /admin/faults) applies to parcels ordered after it.
        self.settings = settings or ParcelSettings(failed_attempt_rate=failed_attempt_rate)
        self.by_order: dict[str, Parcel] = {}
        self.by_waybill: dict[str, Parcel] = {}
        # The automatic clock's queue: (due, tiebreak, logisticsOrderNo); a parcel's live entry is the one
        # matching its next_at, so thousands of parcels cost a heap operation per event, not a scan.
        self._due: list[tuple[float, int, str]] = []
        self._seq = 0

    # -- orders ---------------------------------------------------------------------------------------------

    def create(self, order: dict[str, Any], now: datetime) -> tuple[Parcel, bool]:
        """The parcel for this order and whether it is new. Never awaits, so concurrent calls cannot race."""
        order_no = str(order["logisticsOrderNo"])
        existing = self.by_order.get(order_no)
        if existing is not None:
            return existing, False
        waybill = self._new_waybill()
        receiver = order.get("receiver") or {}
        plan, chosen = self._plan(order)
        parcel = Parcel(
            waybill_no=waybill,
            order_no=order_no,
            order=order,
            routing=routing(_place(receiver), str(receiver.get("postCode") or "") or None),
            plan=plan,
            created_at=now,
            not_before=self._pickup_time(order),
            chosen=chosen,
        )
        self.by_order[order_no] = parcel
        self.by_waybill[waybill] = parcel
        return parcel, True

    def cancel(self, order_no: str | None, waybill_no: str | None, reason: str) -> Parcel:
        parcel = self.find(order_no, waybill_no)
        if parcel.collected:
            raise ParcelError(B_ALREADY_COLLECTED, f"邮件已收寄,不能取消订单: {parcel.waybill_no}")
        # Cancelling twice answers success, as a retried cancel must not turn into an error.
        parcel.cancelled = True
        parcel.cancel_reason = reason
        parcel.next_at = None
        return parcel

    def find(self, order_no: str | None, waybill_no: str | None) -> Parcel:
        by_order = self.by_order.get(order_no) if order_no else None
        by_waybill = self.by_waybill.get(waybill_no) if waybill_no else None
        if order_no and by_order is None:
            raise ParcelError(B_NOT_FOUND, f"订单不存在: {order_no}")
        if waybill_no and by_waybill is None:
            raise ParcelError(B_NOT_FOUND, f"运单不存在: {waybill_no}")
        if by_order is not None and by_waybill is not None and by_order is not by_waybill:
            raise ParcelError(B_NOT_FOUND, "logisticsOrderNo 与 waybillNo 不匹配")
        parcel = by_order or by_waybill
        if parcel is None:
            raise ParcelError(B_MISSING, "logisticsOrderNo")
        return parcel

    def clear(self) -> None:
        self.by_order.clear()
        self.by_waybill.clear()
        self._due.clear()

    # -- the clock ------------------------------------------------------------------------------------------

    def step(self, parcel: Parcel, now: datetime) -> dict[str, str] | None:
        """Reveal the parcel's next event, stamped ``now`` but always after its previous event."""
        if parcel.finished:
            return None
        stamp = now.replace(microsecond=0)
        if not parcel.events and parcel.not_before is not None and stamp < parcel.not_before:
            # Only the manual clock gets here (the automatic one waits): it jumps to the window.
            stamp = parcel.not_before
        if parcel.events:
            previous = parse_time(parcel.events[-1]["opTime"])
            if stamp <= previous:
                stamp = previous + timedelta(seconds=1)
        template = parcel.plan[len(parcel.events)]
        event = {
            "waybillNo": parcel.waybill_no,
            "orderNo": parcel.order_no,
            **template,
            "opTime": format_time(stamp),
        }
        ordered = {name: event.get(name, "") for name in EVENT_FIELDS}
        # reasonCode / reasonDesc travel after EMS's documented fields, and only on the events that have them.
        ordered.update((name, value) for name, value in template.items() if name not in ordered)
        parcel.events.append(ordered)
        if parcel.finished:
            parcel.next_at = None
        return ordered

    def tick(self, steps: int, now: datetime, waybill_no: str | None = None) -> list[dict[str, str]]:
        """The manual clock: move every live parcel (or one) ``steps`` events on."""
        if waybill_no is not None:
            parcel = self.by_waybill.get(waybill_no)
            if parcel is None:
                raise ParcelError(B_NOT_FOUND, f"运单不存在: {waybill_no}")
            parcels = [parcel]
        else:
            parcels = [p for p in self.by_order.values() if not p.finished]
        emitted: list[dict[str, str]] = []
        for _ in range(steps):
            parcels = [p for p in parcels if not p.finished]
            if not parcels:
                break  # a huge step count must not spin once everything is delivered
            for parcel in parcels:
                event = self.step(parcel, now)
                if event is not None:
                    emitted.append(event)
        return emitted

    def schedule(self, parcel: Parcel, mono: float, delay: float) -> None:
        if not parcel.finished:
            parcel.next_at = mono + delay
            self._seq += 1
            heapq.heappush(self._due, (parcel.next_at, self._seq, parcel.order_no))

    def due(self, mono: float, now: datetime, step_seconds: float, speed: float = 1.0) -> list[dict[str, str]]:
        """The automatic clock: every event that has come due by ``mono``, oldest due first. ``speed`` is the
        simulated clock's (simulated seconds per second): a pickup whose window is still to come waits for it."""
        emitted: list[dict[str, str]] = []
        while self._due and self._due[0][0] <= mono:
            at, _, order_no = heapq.heappop(self._due)
            parcel = self.by_order.get(order_no)
            # Entries are never removed when a parcel is rescheduled, cancelled or reset; skip the stale ones.
            if parcel is None or parcel.next_at != at:
                continue
            if not parcel.events and parcel.not_before is not None and now < parcel.not_before:
                # At least a millisecond, or rounding could requeue it at ``mono`` and spin.
                wait = max((parcel.not_before - now).total_seconds() / speed, 0.001)
                self.schedule(parcel, mono, wait)
                continue
            event = self.step(parcel, now)
            if event is not None:
                emitted.append(event)
            if parcel.finished or step_seconds <= 0:
                parcel.next_at = None
            else:
                self.schedule(parcel, at, step_seconds)
        return emitted

    def waiting_for_window(self) -> list[Parcel]:
        """Parcels on the automatic clock whose door pickup waits for its window (to requeue on a clock change)."""
        return [
            p
            for p in self.by_order.values()
            if p.next_at is not None and p.not_before is not None and not p.events and not p.cancelled
        ]

    def next_due(self) -> float | None:
        while self._due:
            at, _, order_no = self._due[0]
            parcel = self.by_order.get(order_no)
            if parcel is not None and parcel.next_at == at:
                return at
            heapq.heappop(self._due)
        return None

    # -- planning -------------------------------------------------------------------------------------------

    def _new_waybill(self) -> str:
        while True:
            # Domestic EMS waybills are 13 digits; ours always start with 1 like the real ones.
            candidate = "1" + "".join(str(self._rng.randrange(10)) for _ in range(12))
            if candidate not in self.by_waybill:
                return candidate

    def _person(self) -> tuple[str, str, str]:
        name = self._rng.choice(_SURNAMES) + self._rng.choice(_GIVEN)
        operator_no = f"{self._rng.randrange(41000000, 41999999)}"
        phone = f"1390371{self._rng.randrange(10000):04d}"
        return name, operator_no, phone

    def _pickup_time(self, order: dict[str, Any]) -> datetime | None:
        """When a door pickup happens at the earliest: in the booked window, a little after it opens."""
        if str(order.get("pickupType", "")).strip() != "1":
            return None
        begin, end = str(order.get("pickupPreBeginTime") or "").strip(), str(order.get("pickupPreEndTime") or "")
        if not begin:
            return None  # no window booked: EMS comes when it can
        opens = parse_time(begin)
        closes = parse_time(end.strip()) if end.strip() else opens + timedelta(hours=2)
        # Within the first quarter of the window (at most an hour), so the courier is never late for it.
        spread = min((closes - opens).total_seconds() / 4, 3600.0)
        return opens + timedelta(seconds=int(self._rng.uniform(0.0, spread)))

    def _draw(self, shares: Mapping[str, float]) -> str:
        keys = [key for key, share in shares.items() if share > 0]
        return self._rng.choices(keys, weights=[shares[key] for key in keys])[0]

    def _reason_fields(self, code: str, desc: str) -> dict[str, str]:
        """About half the failure events carry the reason as fields; the rest say it in words only."""
        if self._rng.random() < self.settings.reason_fields_rate:
            return {"reasonCode": code, "reasonDesc": desc}
        return {}

    def _signer(self, order: dict[str, Any], fill: dict[str, str]) -> tuple[str, str]:
        """(class, 704 opDesc). A code-protected parcel is handed only to the addressee or the family."""
        code_checked = bool(str(order.get("receiverSafetyCode") or "").strip())
        shares = dict(self.settings.signers)
        if code_checked:
            shares = {c: shares.get(c, 0.0) for c in CODE_CHECKED_CLASSES}
            if sum(shares.values()) <= 0:
                shares = {"addressee": 1.0}
        signer_class = self._draw(shares)
        template = self._rng.choice(SIGNER_TEXTS[(signer_class, code_checked)])
        return signer_class, template.format_map(fill)

    def _plan(self, order: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        settings = self.settings
        origin = _place(order.get("sender") or {})
        dest = _place(order.get("receiver") or {})

        def at(place: Place, *, hub: bool) -> dict[str, str]:
            return {
                "opOrgCode": place.hub_code if hub else place.station_code,
                "opOrgName": place.hub_name if hub else place.station_name,
                "opOrgProvName": canonical_province(place.prov) or place.prov,
                "opOrgCity": place.full_city,
            }

        def ev(code: str, name: str, desc: str, org: dict[str, str], who: tuple[str, str] = ("", "")) -> dict:
            return {"opCode": code, "opName": name, "opDesc": desc, **org, "operatorName": who[0], "operatorNo": who[1]}

        collector, collector_no, collector_phone = self._person()
        loader, loader_no, _ = self._person()
        sorter, sorter_no, _ = self._person()
        courier, courier_no, courier_phone = self._person()
        o_station, o_hub = at(origin, hub=False), at(origin, hub=True)
        d_station, d_hub = at(dest, hub=False), at(dest, hub=True)
        same_hub = origin.hub_name == dest.hub_name
        plan: list[dict[str, str]] = []
        chosen: dict[str, Any] = {
            "signer_class": None,
            "verified_by_code": False,
            "attempts": 0,  # failed delivery attempts (705s)
            "failure_reasons": [],
            "refused": False,
            "returned": False,
            "pickup_attempts": 0,  # failed door-pickup attempts (206s)
            "pickup_failure_reasons": [],
            "voided": False,
        }

        # A door pickup can fail (the applicant is not at home); after the last failure the order is void.
        if str(order.get("pickupType", "")).strip() == "1" and settings.pickup_failure_rate > 0:
            for attempt in range(1, settings.pickup_attempts + 1):
                if self._rng.random() >= settings.pickup_failure_rate:
                    break
                reason = REASONS[self._rng.choice(PICKUP_REASONS)]
                chosen["pickup_attempts"] = attempt
                chosen["pickup_failure_reasons"].append(reason.code)
                fields = self._reason_fields(reason.code, reason.pickup_desc)
                last = attempt == settings.pickup_attempts
                text = reason.pickup_text if not fields else f"揽收失败,揽投员:{collector}"
                plan.append(
                    ev(
                        "206",
                        "揽收失败",
                        text + ("" if last else ",将再次上门揽收"),
                        o_station,
                        (collector, collector_no),
                    )
                    | fields
                )
            else:
                chosen["voided"] = True
                plan.append(ev("207", "作废", f"揽收未成功,订单已作废,原因:{reason.pickup_desc}", o_station) | fields)
                return plan, chosen

        plan += [
            ev(
                "203",
                "收寄",
                f"【{origin.station_name}】已收寄,揽投员:{collector},电话:{collector_phone}",
                o_station,
                (collector, collector_no),
            ),
            ev(
                "305",
                "揽投发运",
                f"离开【{origin.station_name}】,下一站【{origin.hub_name}】",
                o_station,
                (loader, loader_no),
            ),
            ev("954", "到达处理中心", f"到达【{origin.hub_name}】", o_hub),
            ev(
                "989",
                "离开处理中心",
                f"离开【{origin.hub_name}】,下一站【{dest.station_name if same_hub else dest.hub_name}】",
                o_hub,
            ),
        ]
        if not same_hub:
            plan += [
                ev("954", "到达处理中心", f"到达【{dest.hub_name}】", d_hub),
                ev("989", "离开处理中心", f"离开【{dest.hub_name}】,下一站【{dest.station_name}】", d_hub),
            ]
        plan.append(ev("306", "揽投解车", f"快件到达【{dest.station_name}】", d_station, (sorter, sorter_no)))

        # One draw decides the outcome, so the shares are shares of parcels.
        draw = self._rng.random()
        if draw < settings.refusal_rate:
            failures = [REFUSED]
        elif draw < settings.refusal_rate + settings.undeliverable_rate:
            failures = [self._draw(settings.reasons) for _ in range(settings.attempts)]
        elif draw < settings.refusal_rate + settings.undeliverable_rate + settings.failed_attempt_rate:
            failures = [self._draw(settings.reasons)]
        else:
            failures = []
        returned = bool(failures) and (failures[-1] == REFUSED or len(failures) >= settings.attempts)
        chosen.update(attempts=len(failures), failure_reasons=failures, refused=REFUSED in failures, returned=returned)

        courier_masked = f"{courier_phone[:3]}****{courier_phone[-4:]}"
        out = f"【{dest.station_name}】安排投递,投递员:{courier},电话:{courier_phone},正在派送中"
        again = f"【{dest.station_name}】再次投递,投递员:{courier},电话:{courier_phone},正在派送中"
        for index, code in enumerate(failures):
            reason = REASONS[code]
            plan.append(ev("702", "投递邮件接收-下段", again if index else out, d_station, (courier, courier_no)))
            final = returned and index == len(failures) - 1
            fields = self._reason_fields(code, reason.desc)
            text = (
                reason.attempt_text.format(next=_BACK if final else _AGAIN)
                if not fields
                else f"投递员:{courier},未能妥投,{_BACK if final else _AGAIN}"
            )
            plan.append(ev("705", "投递结果反馈-未妥投", text, d_station, (courier, courier_no)) | fields)

        if returned:
            why = REASONS[failures[-1]].desc
            first_stop = dest.hub_name
            plan.append(
                ev(
                    "708",
                    "退回",
                    f"邮件退回中,原因:{why},已离开【{dest.station_name}】,下一站【{first_stop}】",
                    d_station,
                )
            )
            if not same_hub:
                plan.append(
                    ev("708", "退回", f"邮件退回中,已离开【{dest.hub_name}】,下一站【{origin.hub_name}】", d_hub)
                )
            plan.append(
                ev("708", "退回", f"邮件退回中,已离开【{origin.hub_name}】,下一站【{origin.station_name}】", o_hub)
            )
            plan.append(
                ev(
                    "708",
                    "退回",
                    f"退回邮件到达【{origin.station_name}】,正在投递给寄件人,投递员:{collector}",
                    o_station,
                    (collector, collector_no),
                )
            )
            plan.append(
                ev(
                    "711",
                    "退回妥投",
                    f"退回邮件已妥投,寄件人签收,投递员:{collector}",
                    o_station,
                    (collector, collector_no),
                )
            )
            return plan, chosen

        plan.append(ev("702", "投递邮件接收-下段", again if failures else out, d_station, (courier, courier_no)))
        fill = {
            "courier": courier,
            "courier_phone": courier_masked,
            "receiver": str((order.get("receiver") or {}).get("name") or ""),
            "city": dest.full_city,
            "county": dest.county,
            "road": self._rng.choice(ROADS),
            "number": str(self._rng.randrange(1, 200)),
            "village": self._rng.choice(VILLAGES),
        }
        signer_class, text = self._signer(order, fill)
        chosen.update(signer_class=signer_class, verified_by_code=CODE_CHECKED in text)
        plan.append(ev("704", "投递结果反馈-妥投", text, d_station, (courier, courier_no)))
        return plan, chosen
