"""Helpers for the 公示 tests: histories written straight into the tables, and a brute-force recount of the
figures from the raw rows, written apart from logistics/gongshi on purpose (plain loops, no shared code beyond
the working-day calendar)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from logistics.domain import deadlines
from logistics.domain.tables import (
    complaints,
    follow_ups,
    gongshi_cells,
    gongshi_state,
    ratings,
    shipment_events,
    shipments,
)
from logistics.storage.db import Database

MARKET = "郑州市上街区市场监督管理局"
CIVIL = "郑州市上街区民政局"
TAX = "郑州市上街区税务局"
DEPARTMENTS = (MARKET, CIVIL, TAX)
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)

# What a shipment holds that is personal: it must never appear on the page, in the JSON or the CSV.
PEOPLE = (
    ("张晓明", "13812345678", "河南省郑州市上街区济源路 12 号"),
    ("欧阳娜娜", "13803712345", "河南省郑州市上街区中心路 132 号 3 号楼"),
    ("李秀英", "15937112233", "河南省郑州市二七区大学路 88 号院 2 单元"),
)


@dataclass
class Step:
    status: str
    occurred_at: datetime
    refused: bool = False
    recorded_at: datetime | None = None  # default: when it occurred


@dataclass
class History:
    department: str
    kind: str
    created_at: datetime
    due_by: date | None
    steps: list[Step]
    complaints: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # (received, answered)
    rating: int | None = None
    follow_up: tuple[datetime, date, datetime | None] | None = None  # (opened, due_by, closed)


async def clear(db: Database) -> None:
    async with db.write() as conn:
        for table in (follow_ups, ratings, gongshi_cells, gongshi_state, complaints, shipment_events, shipments):
            await conn.execute(delete(table))


async def write(db: Database, client_id: str, histories: list[History], *, start: int = 0) -> list[str]:
    ids = []
    async with db.write() as conn:
        for n, h in enumerate(histories, start):
            shipment_id = f"shp_gs{n:020d}"
            ids.append(shipment_id)
            name, phone, address = PEOPLE[n % len(PEOPLE)]
            party = {"name": name, "phone": phone, "province": "河南省", "city": "郑州市", "address": address}
            await conn.execute(
                insert(shipments).values(
                    id=shipment_id,
                    client_id=client_id,
                    kind=h.kind,
                    status=h.steps[-1].status if h.steps else "pending",
                    department=h.department,
                    window="综合受理3号窗口",
                    sender=party,
                    recipient=party,
                    tracking_code=f"T{n:011d}",
                    carrier="ems",
                    waybill_no=f"1295780{n:06d}",
                    created_at=h.created_at,
                    updated_at=h.created_at,
                    last_sequence=len(h.steps) + 1,
                    due_by=h.due_by,
                )
            )
            events = [Step("pending", h.created_at), *h.steps]
            for sequence, step in enumerate(events, 1):
                await conn.execute(
                    insert(shipment_events).values(
                        shipment_id=shipment_id,
                        sequence=sequence,
                        status=step.status,
                        occurred_at=step.occurred_at,
                        recorded_at=step.recorded_at or step.occurred_at,
                        source="carrier_push",
                        location=address,
                        carrier_text=f"{name} 已签收，电话 {phone}",
                        refused=step.refused,
                    )
                )
            for i, (received, answered) in enumerate(h.complaints):
                await conn.execute(
                    insert(complaints).values(
                        id=f"cmp_gs{n:012d}{i:03d}",
                        shipment_id=shipment_id,
                        department=h.department,
                        client_id=client_id,
                        category="delay",
                        text=f"我是{name}，电话{phone}，住{address}，快递太慢",
                        created_at=received,
                        answer="已联系邮政" if answered else None,
                        answered_at=answered,
                    )
                )
            if h.rating is not None:
                rated_at = h.follow_up[0] if h.follow_up else h.created_at + timedelta(days=3)
                await conn.execute(
                    insert(ratings).values(
                        id=f"rat_gs{n:020d}",
                        shipment_id=shipment_id,
                        client_id=client_id,
                        level=h.rating,
                        comment=f"{name} {phone}",
                        created_at=rated_at,
                    )
                )
                if h.follow_up is not None:
                    opened, due, closed = h.follow_up
                    await conn.execute(
                        insert(follow_ups).values(
                            id=f"fu_gs{n:020d}",
                            rating_id=f"rat_gs{n:020d}",
                            shipment_id=shipment_id,
                            department=h.department,
                            client_id=client_id,
                            opened_at=opened,
                            due_by=due,
                            closed_at=closed,
                            action=f"已致电{name}",
                        )
                    )
    return ids


# --- the brute-force recount -------------------------------------------------------------------------------


def beijing(moment: datetime) -> datetime:
    return moment.astimezone(UTC) + timedelta(hours=8)


def month(moment: datetime) -> str:
    b = beijing(moment)
    return f"{b.year:04d}-{b.month:02d}"


def percentile(values: list[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


def fifth_working_day_after(day: date) -> date:
    counted = 0
    while counted < 5:
        day += timedelta(days=1)
        working = deadlines.is_working_day(day)
        counted += day.weekday() < 5 if working is None else working  # a year the calendar lacks: Mon–Fri
    return day


async def recount(db: Database, now: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """(month, department or "") → the figures, from every raw row, one shipment at a time."""
    async with db.read() as conn:
        ships = [dict(r._mapping) for r in await conn.execute(select(shipments))]
        events = [dict(r._mapping) for r in await conn.execute(select(shipment_events))]
        comps = [dict(r._mapping) for r in await conn.execute(select(complaints))]
        rates = [dict(r._mapping) for r in await conn.execute(select(ratings))]
        fus = [dict(r._mapping) for r in await conn.execute(select(follow_ups))]
    current = month(now)
    first_shown = f"{int(current[:4]) - 2}-{current[5:]}"
    by_id = {s["id"]: s for s in ships}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    durations: dict[tuple[str, str], list[int]] = defaultdict(list)

    def add(m: str, department: str, key: str, amount: int = 1) -> None:
        if not (first_shown <= m <= current):
            return
        for d in (department, ""):
            cell = out.setdefault((m, d), blank())
            cell[key] += amount

    for s in ships:
        add(month(s["created_at"]), s["department"], f"created_{s['kind']}")
        mine = sorted(
            (e for e in events if e["shipment_id"] == s["id"] and not e["refused"]),
            key=lambda e: (e["occurred_at"], e["sequence"]),
        )
        endings = [e for e in mine if e["status"] in ("delivered", "failed", "returned")]
        if not endings:
            continue
        end = endings[0]
        m = month(end["occurred_at"])
        add(m, s["department"], "ended")
        if end["status"] != "delivered":
            add(m, s["department"], "failed_or_returned")
            continue
        add(m, s["department"], f"delivered_{s['kind']}")
        if s["due_by"] is not None:
            add(m, s["department"], "with_due")
            add(m, s["department"], "on_time", int(beijing(end["occurred_at"]).date() <= s["due_by"]))
        pickups = [e["occurred_at"] for e in mine if e["status"] == "picked_up"]
        if pickups and min(pickups) <= end["occurred_at"] and first_shown <= m <= current:
            seconds = int((end["occurred_at"] - min(pickups)).total_seconds())
            durations[(m, s["department"])].append(seconds)
            durations[(m, "")].append(seconds)
    for c in comps:
        department = by_id[c["shipment_id"]]["department"]
        m = month(c["created_at"])
        add(m, department, "complaints")
        deadline = fifth_working_day_after(beijing(c["created_at"]).date())
        answered = c["answered_at"]
        add(m, department, "complaints_in_time", int(answered is not None and beijing(answered).date() <= deadline))
    for r in rates:
        department = by_id[r["shipment_id"]]["department"]
        add(month(r["created_at"]), department, "ratings")
        add(month(r["created_at"]), department, "satisfied", int(r["level"] >= 3))
    today = beijing(now).date()
    for f in fus:
        department = by_id[f["shipment_id"]]["department"]
        add(month(f["opened_at"]), department, "follow_ups")
        closed = f["closed_at"]
        late = beijing(closed).date() > f["due_by"] if closed is not None else today > f["due_by"]
        add(month(f["opened_at"]), department, "follow_ups_late", int(late))
    for key, values in durations.items():
        out[key]["transit_n"] = len(values)
        out[key]["transit_median_s"] = percentile(values, 50)
        out[key]["transit_p90_s"] = percentile(values, 90)
    return out


def blank() -> dict[str, Any]:
    keys = (
        "created_intake",
        "created_delivery",
        "delivered_intake",
        "delivered_delivery",
        "ended",
        "failed_or_returned",
        "with_due",
        "on_time",
        "transit_n",
        "complaints",
        "complaints_in_time",
    )
    cell: dict[str, Any] = dict.fromkeys(keys, 0)
    cell |= {"transit_median_s": None, "transit_p90_s": None}
    cell |= dict.fromkeys(("ratings", "satisfied", "follow_ups", "follow_ups_late"), 0)
    return cell


async def stored(db: Database) -> dict[tuple[str, str], dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(gongshi_cells.c.month, gongshi_cells.c.department, gongshi_cells.c.figures))
        return {(r.month, r.department): r.figures for r in rows}
