"""Keeping the 公示 figures: read a month's facts, compute them (figures.py), store the cells. Thin I/O.

The worker calls ``refresh`` every ``REFRESH_SECONDS`` (30). A refresh recomputes whole months, all
departments at once: always the current Beijing month (creations, complaints and ratings happen now), the
previous one at the first refresh of a day (a follow-up becomes late when its day passes), and any earlier month
whose figures rows recorded since the last refresh may change (an ending event pushed late, a late
``picked_up``, a complaint answered, a follow-up closed). The watermark is the previous refresh's ``now``
minus ``OVERLAP``, so a transaction that stamped its rows before that refresh but committed after it is still
read. The first refresh computes every month shown. Recomputing is deterministic from the stored rows, so a
refresh run twice, or by two workers, stores the same cells (the state row's lock orders concurrent writers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ARRAY, Date, Integer, String, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.domain.deadlines import beijing_today
from logistics.domain.statuses import STATUSES
from logistics.domain.tables import (
    GONGSHI_ENDED_WHERE,
    GONGSHI_RECORDED_WHERE,
    UTCDateTime,
    complaints,
    created_between,
    follow_ups,
    gongshi_cells,
    gongshi_state,
    ratings,
    shipments,
)
from logistics.gongshi.figures import (
    KINDS,
    ComplaintFact,
    Ended,
    FollowUpFact,
    MonthFacts,
    compute_month,
    month_bounds,
    month_of,
    months_shown,
)
from logistics.storage.db import Database

log = logging.getLogger("logistics.gongshi")
# The worker's schedule (logistics/jobs/worker.py): with the page's cache (max-age 15 s) the figures anyone sees
# are under 60 seconds old, as the page promises.
REFRESH_SECONDS = 30
OVERLAP = timedelta(minutes=3)  # longer than any write transaction (a job is bounded by JOB_TIMEOUT_SECONDS)
STATE_ID = 1

# Each ending event of the month with, per row, its shipment's handed-to-post time and the number of earlier
# endings (a row counts only when that is 0: the shipment's first ending). Scalar subqueries, so that each is an
# index probe by shipment_id (uq_shipment_events_sequence) rather than a join over all events; the shipments'
# department, kind and due_by are then read by primary key (a join would scan every shipment).
SHIPMENT_BATCH = 500
# Every department that has a shipment, one index probe per status and department (a loose index scan of
# ix_shipments_status_department), not a scan of all shipments.
_DEPARTMENTS = text(
    f"""
    WITH RECURSIVE d(status, name) AS (
        SELECT s.status, (SELECT min(department) FROM shipments WHERE status = s.status)
        FROM ({" UNION ALL ".join(f"SELECT '{s}' AS status" for s in STATUSES)}) s
        UNION ALL
        SELECT d.status, (SELECT min(department) FROM shipments WHERE status = d.status AND department > d.name)
        FROM d WHERE d.name IS NOT NULL
    )
    SELECT DISTINCT name FROM d WHERE name IS NOT NULL
    """
)
_SHIPMENTS_BY_ID = (
    text("SELECT id, department, kind, due_by FROM shipments WHERE id = ANY(:ids)")
    .bindparams(bindparam("ids", type_=ARRAY(String())))
    .columns(id=String(), department=String(), kind=String(), due_by=Date())
)
_ENDED = text(
    f"""
    SELECT e.shipment_id, e.status, e.occurred_at,
        (SELECT min(p.occurred_at) FROM shipment_events p
          WHERE p.shipment_id = e.shipment_id AND p.status = 'picked_up' AND p.refused = false) AS handed_at,
        (SELECT count(*) FROM shipment_events x
          WHERE x.shipment_id = e.shipment_id AND x.status IN ('delivered', 'failed', 'returned')
            AND x.refused = false
            AND (x.occurred_at < e.occurred_at OR (x.occurred_at = e.occurred_at AND x.sequence < e.sequence))
        ) AS earlier
    FROM shipment_events e
    WHERE ({GONGSHI_ENDED_WHERE.replace("status", "e.status")}) AND e.refused = false
      AND e.occurred_at >= :start AND e.occurred_at < :end
    """
).columns(
    shipment_id=String(),
    status=String(),
    occurred_at=UTCDateTime(),
    handed_at=UTCDateTime(),
    earlier=Integer(),
)

# Months whose figures rows recorded since the watermark may change: ending events (their own time), and the
# ending of a shipment whose picked_up arrived late (the transit time of the month it was delivered in).
_TOUCHED_ENDED = text(
    f"""
    SELECT min(COALESCE(e.occurred_at, e.occurred_at)) AS first, max(COALESCE(e.occurred_at, e.occurred_at)) AS last
    FROM shipment_events e
    WHERE ({GONGSHI_RECORDED_WHERE.replace("status", "e.status")})
      AND e.recorded_at >= :since AND e.status IN ('delivered', 'failed', 'returned')
    """
).columns(first=UTCDateTime(), last=UTCDateTime())
# The few picked_up events recorded since drive the join, each probing its shipment's events: on SQLite as
# ``+t.status``, or its planner (which prices any range of recorded_at at a quarter of the index) would walk
# every ending event instead (1.1 s on 200,000 shipments, for no row).
_LATE_PICKUP_SQL = """
    SELECT min(COALESCE(t.occurred_at, t.occurred_at)) AS first, max(COALESCE(t.occurred_at, t.occurred_at)) AS last
    FROM shipment_events e
    JOIN shipment_events t ON t.shipment_id = e.shipment_id
    WHERE ({recorded})
      AND e.recorded_at >= :since AND e.status = 'picked_up'
      AND {t_status} IN ('delivered', 'failed', 'returned') AND t.refused = false
    """


@cache
def _touched_late_pickup(dialect: str) -> Any:
    sql = _LATE_PICKUP_SQL.format(
        recorded=GONGSHI_RECORDED_WHERE.replace("status", "e.status"),
        t_status="+t.status" if dialect == "sqlite" else "t.status",
    )
    return text(sql).columns(first=UTCDateTime(), last=UTCDateTime())


_TOUCHED_COMPLAINTS = text(
    "SELECT min(created_at) AS first, max(created_at) AS last FROM complaints "
    "WHERE created_at >= :since OR answered_at >= :since"
).columns(first=UTCDateTime(), last=UTCDateTime())


_SINCE = bindparam("since", type_=UTCDateTime())
_TOUCHED_FOLLOW_UPS = select(
    func.min(follow_ups.c.opened_at).label("first"), func.max(follow_ups.c.opened_at).label("last")
).where(or_(follow_ups.c.opened_at >= _SINCE, follow_ups.c.closed_at >= _SINCE))


def _bounds(start: datetime, end: datetime) -> dict[str, Any]:
    return {"start": start, "end": end}


def _typed(clause: Any, *names: str) -> Any:
    return clause.bindparams(*(bindparam(n, type_=UTCDateTime()) for n in names))


async def rating_facts(conn: AsyncConnection, start: datetime, end: datetime) -> tuple[list[Any], list[Any]]:
    """The month's ratings (department, level) and follow-ups (opened in the month)."""
    rated = await conn.execute(
        select(shipments.c.department, ratings.c.level)
        .join(shipments, shipments.c.id == ratings.c.shipment_id)
        .where(ratings.c.created_at >= start, ratings.c.created_at < end)
    )
    followed = await conn.execute(
        select(follow_ups.c.department, follow_ups.c.due_by, follow_ups.c.closed_at).where(
            follow_ups.c.opened_at >= start, follow_ups.c.opened_at < end
        )
    )
    levels = [(r.department, r.level) for r in rated]
    return levels, [FollowUpFact(r.department, r.due_by, r.closed_at) for r in followed]


async def month_facts(conn: AsyncConnection, month: str) -> MonthFacts:
    start, end = month_bounds(month)
    facts = MonthFacts()
    # By department through ix_shipments_status_department (no index on created_at alone: every create would pay
    # for it).
    departments = [r[0] for r in await conn.execute(_DEPARTMENTS)]
    for i in range(0, len(departments), SHIPMENT_BATCH):
        rows = await conn.execute(
            select(shipments.c.department, shipments.c.kind, func.count())
            .where(
                shipments.c.department.in_(departments[i : i + SHIPMENT_BATCH]),
                *created_between(start, end),
            )
            .group_by(shipments.c.department, shipments.c.kind)
        )
        facts.created += [(r[0], r[1], int(r[2])) for r in rows if r[1] in KINDS]
    ended = [r for r in await conn.execute(_typed(_ENDED, "start", "end"), _bounds(start, end)) if r.earlier == 0]
    ids = sorted({r.shipment_id for r in ended})
    about: dict[str, Any] = {}
    if conn.dialect.name == "postgresql":  # one array parameter: no statement with thousands of placeholders
        about.update({row.id: row for row in await conn.execute(_SHIPMENTS_BY_ID, {"ids": ids})})
    else:
        for i in range(0, len(ids), SHIPMENT_BATCH):
            query = select(shipments.c.id, shipments.c.department, shipments.c.kind, shipments.c.due_by).where(
                shipments.c.id.in_(ids[i : i + SHIPMENT_BATCH])
            )
            about.update({row.id: row for row in await conn.execute(query)})
    for r in ended:
        s = about[r.shipment_id]
        facts.ended.append(Ended(s.department, s.kind, r.status, r.occurred_at, r.handed_at, s.due_by))
    for r in await conn.execute(
        select(complaints.c.department, complaints.c.created_at, complaints.c.answered_at).where(
            complaints.c.created_at >= start, complaints.c.created_at < end
        )
    ):
        facts.complaints.append(ComplaintFact(r.department, r.created_at, r.answered_at))
    facts.ratings, facts.follow_ups = await rating_facts(conn, start, end)
    return facts


def _months_between(first: datetime | None, last: datetime | None, shown: set[str]) -> set[str]:
    if first is None or last is None:
        return set()
    low, high = month_of(first), month_of(last)
    return {m for m in shown if low <= m <= high}


async def touched_months(conn: AsyncConnection, since: datetime, shown: set[str]) -> set[str]:
    months: set[str] = set()
    texts = (_TOUCHED_ENDED, _touched_late_pickup(conn.dialect.name), _TOUCHED_COMPLAINTS)
    for query in (*(_typed(q, "since") for q in texts), _TOUCHED_FOLLOW_UPS):
        row = (await conn.execute(query, {"since": since})).one()
        months |= _months_between(row.first, row.last, shown)
    return months


@dataclass(frozen=True, slots=True)
class Refreshed:
    months: tuple[str, ...]
    cells: int


async def refresh(db: Database, now: datetime, *, full: bool = False) -> Refreshed:
    """Bring the stored figures up to date at ``now``. Safe to run twice, and from several workers."""
    shown = months_shown(now)
    today = beijing_today(now)
    async with db.read(snapshot=True) as conn:  # every month's facts from one snapshot
        if not db.is_sqlite:
            # Short, index-driven queries (and JIT is off for every connection, storage/db.py).
            await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        state = (await conn.execute(select(gongshi_state).where(gongshi_state.c.id == STATE_ID))).first()
        months = {shown[0]}
        if full or state is None or state.watermark is None:
            months = set(shown)
        else:
            months |= await touched_months(conn, state.watermark - OVERLAP, set(shown))
            # Once a Beijing day (and for OVERLAP after midnight, for creations committed late): the previous
            # month too, whose follow-ups turn late as days pass without any row changing.
            if beijing_today(state.watermark) != today or beijing_today(now - OVERLAP) != today:
                months.add(shown[1])
        computed = {m: compute_month(await month_facts(conn, m), today) for m in months}
    count = sum(len(c) for c in computed.values())
    async with db.write() as conn:
        # The state row first, locked: concurrent refreshes write one after the other.
        if (
            await conn.execute(select(gongshi_state.c.id).where(gongshi_state.c.id == STATE_ID).with_for_update())
        ).first() is None:
            await conn.execute(insert(gongshi_state).values(id=STATE_ID, watermark=None, refreshed_at=None))
        await conn.execute(delete(gongshi_cells).where(gongshi_cells.c.month.in_(sorted(months))))
        # Months that left the 24-month window are not published any more.
        await conn.execute(delete(gongshi_cells).where(gongshi_cells.c.month < shown[-1]))
        rows = [
            {"month": m, "department": d, "figures": cell, "computed_at": now}
            for m, cells in computed.items()
            for d, cell in cells.items()
        ]
        if rows:
            await conn.execute(insert(gongshi_cells), rows)
        await conn.execute(
            update(gongshi_state).where(gongshi_state.c.id == STATE_ID).values(watermark=now, refreshed_at=now)
        )
    log.info("gongshi_refreshed", extra={"months": len(months), "cells": count})
    return Refreshed(tuple(sorted(months)), count)


@dataclass(frozen=True, slots=True)
class Stored:
    refreshed_at: datetime | None
    months: dict[str, dict[str, dict[str, Any]]]  # month → department ("" = total) → raw figures


async def refreshed_at(db: Database) -> datetime | None:
    async with db.read() as conn:
        return await _refreshed_at(conn)


async def _refreshed_at(conn: AsyncConnection) -> datetime | None:
    query = select(gongshi_state.c.refreshed_at).where(gongshi_state.c.id == STATE_ID)
    return (await conn.execute(query)).scalar()


async def load(db: Database) -> Stored:
    async with db.read() as conn:
        at = await _refreshed_at(conn)
        months: dict[str, dict[str, dict[str, Any]]] = {}
        for r in await conn.execute(select(gongshi_cells.c.month, gongshi_cells.c.department, gongshi_cells.c.figures)):
            months.setdefault(r.month, {})[r.department] = r.figures
    return Stored(at, months)
