"""The stored figures equal a brute-force recount over the stored rows, on both databases, for generated
histories (cancelled, failed, returned, late and refused events; month and time-zone edges), after a first
refresh, after later ones that read only what changed, and when run twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gongshi_support import (
    DEPARTMENTS,
    NOW,
    History,
    Step,
    clear,
    recount,
    stored,
    write,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from logistics.accounts import clients
from logistics.domain.tables import complaints, shipment_events
from logistics.gongshi import refresh
from logistics.gongshi.store import OVERLAP
from logistics.storage.db import Database

# Moments on the edges that matter: Beijing midnight at month ends (16:00Z the day before), the first and last
# month shown, and just before now.
EDGES = [
    datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC),  # 2026-10-31 23:59:59 Beijing: October
    datetime(2026, 10, 31, 16, 0, tzinfo=UTC),  # 2026-11-01 00:00 Beijing: November
    datetime(2026, 10, 31, 16, 30, tzinfo=UTC),  # November in Beijing, still October in UTC
    datetime(2026, 11, 30, 15, 59, tzinfo=UTC),
    datetime(2026, 11, 30, 16, 0, tzinfo=UTC),  # December in Beijing
    datetime(2024, 11, 30, 16, 0, tzinfo=UTC),  # the first month shown begins
    datetime(2024, 11, 30, 15, 59, tzinfo=UTC),  # before it: never shown
    NOW - timedelta(hours=2),
]
# Mostly the last weeks, so that cells hold enough shipments for medians and percentiles to be tested.
moments = st.one_of(
    st.sampled_from(EDGES),
    st.datetimes(min_value=datetime(2026, 10, 25), max_value=datetime(2026, 12, 4, 8), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(2024, 11, 1), max_value=datetime(2026, 12, 4, 8), timezones=st.just(UTC)),
)
PATHS = (
    "cancelled",
    "failed",
    "delivered",
    "returned",
    "in_transit",
    "delivered_without_pickup",
    "delivered_then_refused",
    "late_pickup",
    "declined",
)


@st.composite
def histories(draw: Any, base: datetime | None = None) -> History:
    created = draw(moments)
    if base is not None and draw(st.integers(0, 5)):
        created = base + timedelta(seconds=draw(st.integers(0, 20 * 86400)))
    gaps = draw(st.lists(st.integers(0, 150 * 3600), min_size=5, max_size=5))
    t = [created + timedelta(seconds=sum(gaps[: i + 1])) for i in range(5)]
    path = draw(st.sampled_from((*PATHS, "delivered", "delivered", "late_pickup")))
    steps = {
        "cancelled": [Step("cancelled", t[0])],
        "failed": [Step("failed", t[0])],
        "declined": [Step("awaiting_applicant", created), Step("declined", t[0])],
        "delivered": [
            Step("ordered", t[0]),
            Step("picked_up", t[1]),
            Step("in_transit", t[2]),
            Step("delivered", t[3]),
        ],
        "returned": [Step("ordered", t[0]), Step("picked_up", t[1]), Step("returning", t[2]), Step("returned", t[3])],
        "in_transit": [Step("ordered", t[0]), Step("picked_up", t[1]), Step("in_transit", t[2])],
        "delivered_without_pickup": [Step("ordered", t[0]), Step("delivered", t[1])],
        "delivered_then_refused": [
            Step("ordered", t[0]),
            Step("picked_up", t[1]),
            Step("delivered", t[2]),
            Step("in_transit", t[3], refused=True),
            Step("returned", t[4], refused=True),
        ],
        # The pickup scan pushed after the delivery, with its own (earlier) time: late history.
        "late_pickup": [Step("ordered", t[0]), Step("delivered", t[2]), Step("picked_up", t[1])],
    }[path]
    due = draw(st.one_of(st.none(), st.integers(0, 12)))
    beijing_day = (created + timedelta(hours=8)).date()
    complaint_list = draw(
        st.lists(
            st.tuples(st.integers(0, 400), st.one_of(st.none(), st.integers(0, 400))),
            max_size=2,
        )
    )
    return History(
        department=draw(st.sampled_from(DEPARTMENTS)),
        kind=draw(st.sampled_from(("intake", "delivery"))),
        created_at=created,
        due_by=None if due is None else beijing_day + timedelta(days=due),
        steps=steps,
        complaints=[
            (created + timedelta(hours=h), None if a is None else created + timedelta(hours=h + a))
            for h, a in complaint_list
        ],
    )


HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def client_id(db: Database) -> str:
    return (await clients.create(db, "上街区行政审批系统")).id


@st.composite
def batches(draw: Any, max_size: int = 40) -> list[History]:
    """Histories clustered around one moment, so cells hold enough shipments for medians and percentiles."""
    base = draw(moments)
    return draw(st.lists(histories(base), min_size=10, max_size=max_size))


@HYPOTHESIS
@given(batches())
async def test_the_figures_equal_a_recount_of_the_stored_rows(db: Database, client_id: str, hs: list[History]) -> None:
    await clear(db)
    await write(db, client_id, hs)
    await refresh(db, NOW)
    assert await stored(db) == await recount(db, NOW)


@HYPOTHESIS
@given(
    moments.flatmap(lambda base: st.lists(st.tuples(histories(base), st.booleans(), st.integers(0, 3700)), max_size=25))
)
async def test_a_later_refresh_reads_what_was_recorded_since_and_a_second_run_changes_nothing(
    db: Database, client_id: str, cases: list[tuple[History, bool, int]]
) -> None:
    """Steps and complaint answers recorded after the first refresh (some stamped up to OVERLAP before it, as a
    long transaction would) reach their months, however old, at the next refresh."""
    await clear(db)
    earlier = NOW - timedelta(hours=1)
    held: list[tuple[int, list[Any]]] = []
    first = []
    for n, (h, late, offset) in enumerate(cases):
        h.created_at = min(h.created_at, earlier - timedelta(hours=1))
        recorded = earlier - OVERLAP + timedelta(seconds=offset % (3600 + int(OVERLAP.total_seconds())))
        if late and h.steps:
            *kept, last = h.steps
            last.recorded_at = recorded
            held.append((n, [last]))
            h.steps = kept
        first.append(h)
    ids = await write(db, client_id, first)
    await refresh(db, earlier)
    async with db.write() as conn:
        for n, steps in held:
            for step in steps:
                await conn.execute(
                    shipment_events.insert().values(
                        shipment_id=ids[n],
                        sequence=len(first[n].steps) + 2,
                        status=step.status,
                        occurred_at=step.occurred_at,
                        recorded_at=step.recorded_at,
                        source="carrier_push",
                        refused=step.refused,
                    )
                )
        # The hall answers every open complaint now: each counts in its own month, in time or late.
        await conn.execute(
            update(complaints).where(complaints.c.answered_at.is_(None)).values(answer="已处理", answered_at=NOW)
        )
    await refresh(db, NOW)
    expected = await recount(db, NOW)
    assert await stored(db) == expected
    await refresh(db, NOW)
    assert await stored(db) == expected


@HYPOTHESIS
@given(
    st.lists(
        st.tuples(
            histories(NOW - timedelta(days=30)),
            st.integers(1, 5),
            st.integers(0, 20),
            st.one_of(st.none(), st.integers(0, 15)),
        ),
        max_size=12,
    )
)
async def test_ratings_and_late_follow_ups_equal_a_recount(
    db: Database, client_id: str, cases: list[tuple[History, int, int, int | None]]
) -> None:
    """Satisfied = levels 3–5; a follow-up is late when closed after its due date or still open after it."""
    await clear(db)
    hs = []
    for h, level, opened_days, closed_days in cases:
        h.rating = level
        opened = h.created_at + timedelta(days=1)
        if level <= 2:
            due = (opened + timedelta(hours=8)).date() + timedelta(days=7)
            closed = None if closed_days is None else opened + timedelta(days=closed_days)
            h.follow_up = (opened + timedelta(days=opened_days % 3), due, closed)
        hs.append(h)
    await write(db, client_id, hs)
    await refresh(db, NOW)
    assert await stored(db) == await recount(db, NOW)


async def test_an_event_at_1630z_on_october_31_counts_in_november(db: Database, client_id: str) -> None:
    created = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)
    await write(db, client_id, [History(DEPARTMENTS[1], "intake", created, None, [Step("failed", created)])])
    await refresh(db, NOW)
    cells = await stored(db)
    assert cells[("2026-11", DEPARTMENTS[1])]["created_intake"] == 1
    assert cells[("2026-11", "")]["failed_or_returned"] == 1
    assert ("2026-10", DEPARTMENTS[1]) not in cells


async def test_months_older_than_24_are_dropped_as_time_passes(db: Database, client_id: str) -> None:
    created = datetime(2024, 12, 10, 2, 0, tzinfo=UTC)
    await write(db, client_id, [History(DEPARTMENTS[2], "delivery", created, None, [])])
    await refresh(db, NOW)
    assert ("2024-12", DEPARTMENTS[2]) in await stored(db)
    await refresh(db, datetime(2027, 1, 5, tzinfo=UTC))
    assert ("2024-12", DEPARTMENTS[2]) not in await stored(db)
