"""What the console reads: today's shipments of a department, finding a shipment, one shipment in full, and the
access log every view of personal data writes. Every query is bounded to the clerk's departments: a shipment
of another department is not found, whatever the way in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    true,
    union_all,
)

from logistics.api.schemas import BEIJING
from logistics.console.access_log import writer_for
from logistics.domain.tables import (
    APPLICANT_FIELD_SQL,
    MOVED_STATUSES,
    STARTED_SQL,
    STARTING_STATUSES,
    complaints,
    constant,
    created_between,
    personal_data_access,
    shipment_cases,
    shipment_events,
    shipments,
    staff,
    status_in_sql,
)
from logistics.storage.db import Database

WAITING_FOR_COURIER = ("pending", "ordered")

TODAY_SECTIONS = ("created", "waiting", "picked_up", "delivered")
LIST_LIMIT = 200
FIND_LIMIT = 50

# The columns a list row shows: no party data, so a list is not a view of personal data (and few timestamps: the
# driver decodes one for the cost of several texts).
LIST_COLUMNS = (
    shipments.c.id,
    shipments.c.kind,
    shipments.c.status,
    shipments.c.window,
    shipments.c.tracking_code,
    shipments.c.waybill_no,
    shipments.c.created_at,
    shipments.c.due_by,
    shipments.c.overdue_at,
    shipments.c.handed_at,
)


def among(column: Any, values: Sequence[str]) -> Any:
    """``column IN (...)`` of fixed values, as ``constant``s (an ``in_`` of a plain list is an "expanding"
    parameter, written into the statement's text again at every execution)."""
    return column.in_([constant(v) for v in values])


def in_departments(n: int, column: Any = shipments.c.department) -> Any:
    """The scope of a clerk's ``n`` departments, bound as department_0 … (see ``department_params``)."""
    return column.in_([bindparam(f"department_{i}") for i in range(n)])


def department_params(departments: Sequence[str]) -> dict[str, str]:
    return {f"department_{i}": d for i, d in enumerate(departments)}


def by_created(dialect: str) -> Any:
    """created_at to order a list by. On SQLite as ``+created_at``: its planner knows only the average number of
    rows per status, and may read a whole status in an index's order rather than look up the few rows of a status
    and sort them; the unary plus takes the column out of any index's ordering."""
    return literal_column("+shipments.created_at") if dialect == "sqlite" else shipments.c.created_at


def unindexed_status(dialect: str) -> Any:
    """The status as a filter on rows another index yields. SQLite's planner would rather read every row of a
    status in the department (all its delivered parcels, say) than the few that moved today; the unary plus
    keeps the column out of its index choices."""
    return literal_column("+shipments.status") if dialect == "sqlite" else shipments.c.status


def beijing_day(day: date) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of a Beijing calendar day."""
    start = datetime.combine(day, time(0), tzinfo=BEIJING)
    return start, start + timedelta(days=1)


def probe(query: Select[Any]) -> ColumnElement[bool]:
    """Whether ``query``, correlated to the list's row, finds a row: run for each row the list's index yields. As
    an EXISTS the planner may turn it into a join and, in the plan it keeps for every execution, drive it from
    the other side: every event of the table scanned for a department's few shipments."""
    return query.limit(1).scalar_subquery().is_not(None)


@dataclass
class WindowDay:
    window: str
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {s: [] for s in TODAY_SECTIONS})


# The console's statements are built once, with bound parameters: building a select costs a page more CPU than
# the database spends answering it (benchmarks/console.py).
def ids_in(column: Any, dialect: str) -> Any:
    """``column`` among the bound list ``ids``. On PostgreSQL one array parameter (``= ANY``), so the statement's
    text is the same whatever the list's length and the driver's prepared statement serves them all; an expanding
    ``IN`` would be written out again, and prepared anew, for every length. SQLite has no arrays."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(String())))
    return column.in_(bindparam("ids", expanding=True))


def with_first_case(listed: Any, dialect: str) -> Select[Any]:
    """``listed``'s rows (a subquery with an ``id``) and their first case's number and item (``case_no``,
    ``item_name``; NULL for a shipment without cases), in the page's one round trip. On PostgreSQL one lateral
    probe per row (two correlated subqueries read the case twice: 0.2 of today's 1.5 ms); SQLite has no LATERAL."""
    first = (
        select(shipment_cases.c.case_no, shipment_cases.c.item_name)
        .where(shipment_cases.c.shipment_id == listed.c.id)
        .order_by(shipment_cases.c.position)
        .limit(1)
    )
    if dialect == "postgresql":
        probed = first.lateral("first_case")
        return select(listed, probed.c.case_no, probed.c.item_name).select_from(listed.outerjoin(probed, true()))
    return select(
        listed,
        first.with_only_columns(shipment_cases.c.case_no).scalar_subquery().label("case_no"),
        first.with_only_columns(shipment_cases.c.item_name).scalar_subquery().label("item_name"),
    )


def dicts(result: Any) -> list[dict[str, Any]]:
    """A list statement's rows as dicts: ``dict(row._mapping)`` costs a page several times as much, and fetching
    the rows one by one a fifth more than all at once."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def annotated_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row read with ``with_first_case``, as ``annotate`` leaves one (a shipment without cases shows "—")."""
    row["case_no"] = row["case_no"] or "—"
    row["item_name"] = row["item_name"] or "—"
    return row


@cache
def _first_cases_by_id(dialect: str) -> Any:
    """The first cases of a bound list of shipment ids (parameter ``ids``)."""
    return with_first_case(select(shipments.c.id).where(ids_in(shipments.c.id, dialect)).subquery("listed"), dialect)


async def annotate(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to list rows their first case (number and item): for rows read without ``with_first_case``."""
    ids = sorted({r["id"] for r in rows})
    found: dict[str, dict[str, Any]] = {}
    if ids:
        for r in dicts(await conn.execute(_first_cases_by_id(conn.dialect.name), {"ids": ids})):
            found[r["id"]] = annotated_row(r)
    for row in rows:
        extra = found.get(row["id"], {"case_no": "—", "item_name": "—"})
        row["case_no"], row["item_name"] = extra["case_no"], extra["item_name"]
    return rows


@cache
def _today_query(dialect: str) -> Any:
    """The four sections in one statement; parameters department, start and end (the day's UTC bounds)."""
    mine = shipments.c.department == bindparam("department")
    # On PostgreSQL the day's bounds are written into the statement (a new text once a day): bound as parameters,
    # the server cannot know that "updated today" is a few rows, judges every execution worth a plan of its own,
    # and plans the whole statement again at every page.
    start, end = (
        bindparam(name, type_=shipments.c.created_at.type, literal_execute=dialect == "postgresql")
        for name in ("start", "end")
    )

    # updated_at is when the shipment last changed, so one that moved today has updated_at today or later, and a
    # parcel picked up or delivered is in one of MOVED_STATUSES: the partial index ix_shipments_department_moved
    # (whose condition is repeated word for word) yields those rows.
    moved_today = (mine, literal_column(status_in_sql(MOVED_STATUSES)), shipments.c.updated_at >= start)

    def section(name: str, *where: Any) -> Any:
        order = shipments.c.created_at if name == "created" else by_created(dialect)
        return (
            select(literal_column(f"'{name}'").label("section"), *LIST_COLUMNS)
            .where(*where)
            .order_by(order.desc())
            .limit(LIST_LIMIT)
        )

    parts = [
        section("created", mine, *created_between(start, end)),
        section("waiting", mine, among(shipments.c.status, WAITING_FOR_COURIER)),
        section("picked_up", *moved_today, shipments.c.handed_at >= start, shipments.c.handed_at < end),
        section(
            "delivered",
            *moved_today,
            unindexed_status(dialect) == constant("delivered"),
            shipments.c.delivered_at >= start,
            shipments.c.delivered_at < end,
        ),
    ]
    # One round trip: each section's (ordered, bounded) rows as a part of one UNION ALL, tagged with its name.
    listed = union_all(*(select(part.subquery()) for part in parts)).subquery("today")
    return with_first_case(listed, dialect)


async def today(db: Database, department: str, day: date) -> dict[str, WindowDay]:
    """One department's day by window: created that day, waiting for the courier now, picked up and delivered
    that day (by the time of its first such event: a parcel handed over yesterday and scanned again today
    was not picked up today)."""
    async with db.read() as conn:
        return await today_on(conn, department, day)


async def today_on(conn: Any, department: str, day: date) -> dict[str, WindowDay]:
    """``today`` on an open connection (the console's page shares it with its session lookup)."""
    start, end = beijing_day(day)
    windows: dict[str, WindowDay] = {}
    found: dict[str, list[dict[str, Any]]] = {s: [] for s in TODAY_SECTIONS}
    params = {"department": department, "start": start, "end": end}
    for row in dicts(await conn.execute(_today_query(conn.dialect.name), params)):
        annotated_row(row)
        found[row.pop("section")].append(row)
    for rows in found.values():  # each part came ordered, but a UNION ALL promises no order: sorting again is cheap
        rows.sort(key=lambda row: row["created_at"], reverse=True)
    for section, rows in found.items():
        for row in rows:
            if row["window"] not in windows:
                windows[row["window"]] = WindowDay(row["window"])
            windows[row["window"]].sections[section].append(row)
    return dict(sorted(windows.items()))


def applicant_field(dialect: str, key: str) -> Any:
    """The applicant's ``phone`` or ``name``, spelt as its index is (ix_shipments_applicant_*)."""
    return literal_column(APPLICANT_FIELD_SQL[dialect].format(key=key))


PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?")


def looks_personal(query: str) -> bool:
    """A mobile or landline number, or a name (not ASCII): only these are matched against the applicant (and
    each hit is then a view of personal data to record); codes never take that path."""
    return bool(PHONE.fullmatch(query)) or not query.isascii()


@cache
def _find_queries(dialect: str, n_departments: int) -> tuple[Any, Any]:
    """By a code; and by a code or the applicant, tagged with the way; parameters q, code (q in capitals) and the
    departments'."""
    q = bindparam("q", type_=String())
    # Each way in is its own indexed lookup (an OR of them would make the database scan the department).
    by_code = shipments.c.id.in_(
        union_all(
            select(shipment_cases.c.shipment_id).where(shipment_cases.c.case_no == q),
            select(shipments.c.id).where(shipments.c.waybill_no == q),
            select(shipments.c.id).where(shipments.c.tracking_code == bindparam("code", type_=String())),
            select(shipments.c.id).where(shipments.c.id == q),
        )
    )
    # The applicant (an intake's sender, a delivery's recipient) by phone or name: two expression index lookups;
    # and the clerk's departments' shipments still starting (in neither index), read by status.
    scope = in_departments(n_departments)
    matches = [applicant_field(dialect, key) == q for key in ("phone", "name")]
    by_person = shipments.c.id.in_(
        union_all(
            *(select(shipments.c.id).where(match, literal_column(STARTED_SQL)) for match in matches),
            select(shipments.c.id).where(among(shipments.c.status, STARTING_STATUSES), scope, or_(*matches)),
        )
    )
    code, person = (
        select(*LIST_COLUMNS).where(scope, way).order_by(shipments.c.created_at.desc()).limit(FIND_LIMIT)
        for way in (by_code, by_person)
    )
    # What may be a phone or a name is looked up both ways in one round trip; a code match wins (find_on).
    either = union_all(
        *(
            select(literal_column(f"'{way}'").label("way"), part.subquery())
            for way, part in (("code", code), ("person", person))
        )
    )
    return code, either


async def find(db: Database, departments: Sequence[str], query: str) -> tuple[list[dict[str, Any]], bool]:
    """Shipments of these departments whose case number, waybill, tracking code, or the applicant's phone or name
    is exactly ``query``; and whether the match went by personal data (then each hit is a view to record)."""
    async with db.read() as conn:
        return await find_on(conn, departments, query)


async def find_on(
    conn: Any, departments: Sequence[str], query: str, *, annotated: bool = True
) -> tuple[list[dict[str, Any]], bool]:
    """``find`` on an open connection; ``annotated=False`` leaves out the first case and the hand-over time, for a
    caller that may not list the rows (see ``annotate``)."""
    q = query.strip()
    if not q or not departments:
        return [], False
    by_code, either = _find_queries(conn.dialect.name, len(departments))
    params = {"q": q, "code": q.upper(), **department_params(departments)}
    if looks_personal(q):
        found: dict[str, list[dict[str, Any]]] = {"code": [], "person": []}
        for row in dicts(await conn.execute(either, params)):
            found[row.pop("way")].append(row)
        personal = not found["code"]
        rows = sorted(found["person"] if personal else found["code"], key=lambda r: r["created_at"], reverse=True)
    else:
        rows, personal = dicts(await conn.execute(by_code, params)), False
    if annotated:
        await annotate(conn, rows)
    return rows, personal


async def shipment_on(conn: Any, departments: Sequence[str], shipment_id: str) -> dict[str, Any] | None:
    """One shipment in full (parties, cases, events, complaints), or None when it is not one of these
    departments' — the same answer as for an id that does not exist."""
    found = (
        await conn.execute(
            select(shipments).where(shipments.c.id == shipment_id[:40], shipments.c.department.in_(list(departments)))
        )
    ).first()
    if found is None:
        return None
    row = dict(found._mapping)
    sid = row["id"]
    row["cases"] = dicts(
        await conn.execute(
            select(shipment_cases.c.case_no, shipment_cases.c.item_name)
            .where(shipment_cases.c.shipment_id == sid)
            .order_by(shipment_cases.c.position)
        )
    )
    row["events"] = dicts(
        await conn.execute(
            select(shipment_events, staff.c.name.label("staff_name"))
            .outerjoin(staff, staff.c.id == shipment_events.c.staff_id)
            .where(shipment_events.c.shipment_id == sid)
            .order_by(shipment_events.c.occurred_at.desc(), shipment_events.c.sequence.desc())
        )
    )
    row["complaints"] = dicts(
        await conn.execute(
            select(complaints, staff.c.name.label("answered_by_name"))
            .outerjoin(staff, staff.c.id == complaints.c.answered_by)
            .where(complaints.c.shipment_id == sid)
            .order_by(complaints.c.created_at)
        )
    )
    return row


_RECORD_VIEW = insert(personal_data_access)  # built once: building an INSERT costs more than sending it


async def record_views(
    db: Database,
    staff_id: str,
    shipment_ids: Sequence[str],
    *,
    address: str,
    view: str,
    now: datetime,
    conn: Any = None,
) -> None:
    """The access log: one row per shipment whose personal data was shown (or matched) to this clerk, stored
    before this returns. ``conn``: the page's connection from ``Database.read()``, which stores them itself on
    PostgreSQL."""
    if not shipment_ids:
        return
    rows = [
        {"staff_id": staff_id, "shipment_id": sid, "viewed_at": now, "address": address[:64], "view": view}
        for sid in shipment_ids
    ]
    if conn is not None and db.commits_each_statement(conn):
        # One INSERT, committed as it returns: a round trip, where the log's writer would take a second
        # connection from the pool (its pre-ping) and hand the page over to its task and back.
        await conn.execute(_RECORD_VIEW, rows)
        return
    await writer_for(db).record(rows)


async def access_log(
    db: Database,
    *,
    staff_id: str | None = None,
    shipment_id: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    conditions = []
    if staff_id:
        conditions.append(personal_data_access.c.staff_id == staff_id)
    if shipment_id:
        conditions.append(personal_data_access.c.shipment_id == shipment_id)
    if since is not None:
        conditions.append(personal_data_access.c.viewed_at >= since)
    async with db.read() as conn:
        rows = await conn.execute(
            select(personal_data_access)
            .where(and_(*conditions) if conditions else True)
            .order_by(personal_data_access.c.viewed_at, personal_data_access.c.id)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]
