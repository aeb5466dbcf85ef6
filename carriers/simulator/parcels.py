"""Parcels and their clock: a pure state machine, no HTTP, no tasks.

Every order gets its whole tracking history planned at creation (so a seed reproduces it) and the clock only
reveals the next planned event. Callers pass the times in: ``now`` (wall clock, Beijing) stamps events, and
``mono`` (a monotonic reading) drives the automatic clock.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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

# Delivery-failure sub-reasons from the older EMS system (README, "Event codes") that lead to another attempt.
_FAILED_REASONS = (
    ("103", "收件人不在指定地址"),
    ("113", "无法联系收件人"),
    ("124", "收件地址不详"),
    ("130", "收件人要求改日投递"),
)

_SIGNERS = ("本人签收", "他人代收:家人", "单位收发室代收", "本人签收")


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

    @property
    def collected(self) -> bool:
        return bool(self.events)

    @property
    def finished(self) -> bool:
        return self.cancelled or len(self.events) >= len(self.plan)

    @property
    def state(self) -> str:
        if self.cancelled:
            return "cancelled"
        if not self.events:
            return "ordered"
        if self.finished:
            return "delivered"
        return "in_transit"

    def summary(self) -> dict[str, Any]:
        return {
            "waybillNo": self.waybill_no,
            "logisticsOrderNo": self.order_no,
            "state": self.state,
            "createdTime": format_time(self.created_at),
            "cancelReason": self.cancel_reason,
            "events": list(self.events),
            "order": self.order,  # the order object as received, so tests can check what the client sent
            "remaining": [step["opCode"] for step in self.plan[len(self.events) :]] if not self.cancelled else [],
            **self.routing,
        }


def _place(party: dict[str, Any]) -> Place:
    prov = str(party.get("prov", ""))
    return Place(canonical_province(prov) or prov, str(party.get("city", "")), str(party.get("county", "")))


class ParcelBook:
    """All orders of one simulator, keyed by logisticsOrderNo (the idempotency key) and by waybill."""

    def __init__(self, rng: random.Random, failed_attempt_rate: float = 0.2) -> None:
        self._rng = rng
        self._failed_attempt_rate = failed_attempt_rate
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
        parcel = Parcel(
            waybill_no=waybill,
            order_no=order_no,
            order=order,
            routing=routing(_place(receiver), str(receiver.get("postCode") or "") or None),
            plan=self._plan(order),
            created_at=now,
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

    def due(self, mono: float, now: datetime, step_seconds: float) -> list[dict[str, str]]:
        """The automatic clock: every event that has come due by ``mono``, oldest due first."""
        emitted: list[dict[str, str]] = []
        while self._due and self._due[0][0] <= mono:
            at, _, order_no = heapq.heappop(self._due)
            parcel = self.by_order.get(order_no)
            # Entries are never removed when a parcel is rescheduled, cancelled or reset; skip the stale ones.
            if parcel is None or parcel.next_at != at:
                continue
            event = self.step(parcel, now)
            if event is not None:
                emitted.append(event)
            if parcel.finished or step_seconds <= 0:
                parcel.next_at = None
            else:
                self.schedule(parcel, at, step_seconds)
        return emitted

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

    def _plan(self, order: dict[str, Any]) -> list[dict[str, str]]:
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

        plan = [
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
        plan.append(
            ev(
                "702",
                "投递邮件接收-下段",
                f"【{dest.station_name}】安排投递,投递员:{courier},电话:{courier_phone},正在派送中",
                d_station,
                (courier, courier_no),
            )
        )
        if self._rng.random() < self._failed_attempt_rate:
            _, reason = self._rng.choice(_FAILED_REASONS)
            plan.append(
                ev("705", "投递结果反馈-未妥投", f"因{reason},未能妥投,将再次投递", d_station, (courier, courier_no))
            )
            plan.append(
                ev(
                    "702",
                    "投递邮件接收-下段",
                    f"【{dest.station_name}】再次投递,投递员:{courier},电话:{courier_phone},正在派送中",
                    d_station,
                    (courier, courier_no),
                )
            )
        plan.append(
            ev(
                "704",
                "投递结果反馈-妥投",
                f"已签收,{self._rng.choice(_SIGNERS)},投递员:{courier}",
                d_station,
                (courier, courier_no),
            )
        )
        return plan
