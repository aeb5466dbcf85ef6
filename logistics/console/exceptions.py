"""Exceptions to chase, most urgent first: each with why and the next step.

The wording and the order live in exceptions.csv beside this module (code, urgency, why, next step); this module
holds only how each code is found. One shipment is listed once, under its most urgent reason, with its other
reasons beside it.

HOOK (issue 17 merge): ``returning`` / ``returned`` without a decision, and ``delivery_failed``'s attempts and
reason code, arrive with the returns branch. Add their rows to exceptions.csv and a finder to ``_finders`` below;
nothing else changes.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, cast, func, literal_column, null, select, union_all

from logistics.console.queries import (
    among,
    annotated_row,
    by_created,
    department_params,
    dicts,
    in_departments,
    probe,
    with_first_case,
)
from logistics.domain.deadlines import beijing_today
from logistics.domain.statuses import FINAL, STATUSES
from logistics.domain.tables import (
    UNDECIDED_DEPARTMENT_SQL,
    complaints,
    constant,
    follow_ups,
    shipment_events,
    shipments,
)
from logistics.storage.db import Database

RULES_FILE = Path(__file__).with_name("exceptions.csv")
# Named status by status (not "not final"), so each is a lookup of ix_shipments_status_department.
OPEN = among(shipments.c.status, sorted(set(STATUSES) - FINAL))
# A parcel that came back (or a voided pickup) leaves the queue once the hall resent it or resolved it: one of
# the clerk's departments as the undecided one's department (NULL for the decided, read by ix_shipments_undecided).
UNDECIDED_DEPARTMENT = literal_column(UNDECIDED_DEPARTMENT_SQL)
CHASE_LIMIT = 500
QUEUE_COLUMNS = (
    "id", "kind", "status", "department", "window", "created_at", "due_by", "overdue_at", "handed_at", "failure_reason",
    "attempts",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    urgency: int
    why: str
    next_step: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The configurable thresholds (settings console_*)."""

    awaiting_days: float
    pickup_hours: float
    warn_days: int


@dataclass
class Chase:
    rule: Rule
    why: str
    shipment: dict[str, Any]
    also: list[str] = field(default_factory=list)


@cache
def rules() -> dict[str, Rule]:
    with RULES_FILE.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["code"] and not r["code"].startswith("#")]
    return {r["code"]: Rule(r["code"], int(r["urgency"]), r["why"], r["next_step"]) for r in rows}


# The finders' moments, bound when the queue is read (its statement is built once per dialect and rule set).
TODAY = bindparam("today", type_=shipments.c.due_by.type)
WARN_UNTIL = bindparam("warn_until", type_=shipments.c.due_by.type)  # today + warn_days
ORDERED_BEFORE = bindparam("ordered_before", type_=shipment_events.c.occurred_at.type)  # now - pickup_hours
CREATED_BEFORE = bindparam("created_before", type_=shipments.c.created_at.type)  # now - awaiting_days


@dataclass(frozen=True, slots=True)
class Finder:
    """Which of the clerk's shipments one part of the queue catches, and under which rule code (a column: one
    part may yield two codes); a follow-up's part reads the follow-up with the shipment, its due date along."""

    where: ColumnElement[bool]
    code: Any
    follow_up: bool = False


def _finders(n_departments: int) -> dict[tuple[str, ...], Finder]:
    """The queue's parts by the rule codes each yields. Complaints and follow-ups are scoped by their own
    department column first: a department's few open ones, not every department's, through their partial
    indexes."""
    today = TODAY
    undecided = in_departments(n_departments, UNDECIDED_DEPARTMENT)
    # Past the deadline or close to it: the department's open shipments with a deadline are read once for both.
    deadline = case((shipments.c.due_by < today, constant("overdue")), else_=constant("due_soon"))
    where = {
        "delivery_failed": shipments.c.status == constant("delivery_failed"),
        "returning": (shipments.c.status == constant("returning")) & undecided,
        "returned": (shipments.c.status == constant("returned")) & undecided,
        "failed": (shipments.c.status == constant("failed")) & shipments.c.finished_at.is_not(None) & undecided,
        # Timed from the order itself (updated_at also moves when, say, a label is stored).
        "not_picked_up": (shipments.c.status == constant("ordered"))
        & probe(
            select(shipment_events.c.id).where(
                shipment_events.c.shipment_id == shipments.c.id,
                shipment_events.c.status == constant("ordered"),
                shipment_events.c.occurred_at < ORDERED_BEFORE,
            )
        ),
        # Only complaints still waiting for the hall's answer (answered on the shipment page).
        "complaint": shipments.c.id.in_(
            select(complaints.c.shipment_id)
            .where(in_departments(n_departments, complaints.c.department), complaints.c.answered_at.is_(None))
            .scalar_subquery()
        )
        & shipments.c.purged_at.is_(None),
        "awaiting_applicant": (shipments.c.status == constant("awaiting_applicant"))
        & (shipments.c.created_at < CREATED_BEFORE),
        "label_not_printed": (shipments.c.status == constant("ordered"))
        & shipments.c.waybill_no.is_not(None)
        & shipments.c.label_printed_at.is_(None),
    }
    # 好差评: a bad rating's follow-up still open (one per shipment: one rating each), past its due date or not.
    follow_up = in_departments(n_departments, follow_ups.c.department) & follow_ups.c.closed_at.is_(None)
    return {
        ("overdue", "due_soon"): Finder((shipments.c.due_by <= WARN_UNTIL) & OPEN, deadline),
        **{(code,): Finder(condition, constant(code)) for code, condition in where.items()},
        ("follow_up_overdue",): Finder(follow_up & (follow_ups.c.due_by < today), constant("follow_up_overdue"), True),
        ("follow_up",): Finder(follow_up & (follow_ups.c.due_by >= today), constant("follow_up"), True),
    }


def _why(rule: Rule, row: dict[str, Any], limits: Limits, complaint_count: int, follow_up_due: date | None) -> str:
    reason = row.get("last_failure_reason") or row.get("failure_reason") or "原因未知"
    return _why_text(rule, limits, row.get("due_by"), reason, row.get("attempts") or 0, complaint_count, follow_up_due)


@lru_cache(maxsize=4096)
def _why_text(
    rule: Rule, limits: Limits, due: date | None, reason: str, attempts: int, count: int, follow_up_due: date | None
) -> str:
    """A reason in words, written once per set of facts (a queue repeats a few: the same deadline, failure)."""
    return rule.why.format(
        due_by=due.isoformat() if due else "—",
        reason=reason,
        attempts=attempts,
        days=limits.warn_days if rule.code == "due_soon" else f"{limits.awaiting_days:g}",
        hours=f"{limits.pickup_hours:g}",
        count=count,
        follow_up_due=follow_up_due.isoformat() if follow_up_due else "—",
    )


@cache
def _queue(dialect: str, codes: tuple[str, ...], n_departments: int) -> Any:
    """One round trip: each finder's (ordered, bounded) rows as a part of one UNION ALL, tagged with its code."""
    scope = in_departments(n_departments)
    # What the queue's page and wording show (a timestamp costs the driver several times a text to decode): of the
    # last failure only its reason, not the whole document decoded for every row.
    columns = (
        *(shipments.c[name] for name in QUEUE_COLUMNS),
        shipments.c.last_failure["reason"].as_string().label("last_failure_reason"),
    )
    no_date = cast(null(), follow_ups.c.due_by.type)
    parts = []
    for n, (yields, finder) in enumerate(_finders(n_departments).items()):
        if not set(yields) <= set(codes):
            continue
        part = select(
            finder.code.label("code"),
            *columns,
            (follow_ups.c.due_by if finder.follow_up else no_date).label("follow_up_due"),
        )
        if finder.follow_up:
            part = part.select_from(shipments.join(follow_ups, follow_ups.c.shipment_id == shipments.c.id))
        parts.append(
            part.where(scope, finder.where).order_by(by_created(dialect)).limit(CHASE_LIMIT).subquery(f"find_{n}")
        )
    if not parts:
        return None
    found = union_all(*(select(part) for part in parts)).subquery("chase")
    # How many complaints wait for an answer: only the row that caught the shipment for that reason says so (a
    # shipment comes once per reason it is caught for).
    open_complaints = (
        select(func.count())
        .where(complaints.c.shipment_id == found.c.id, complaints.c.answered_at.is_(None))
        .scalar_subquery()
    )
    counted = case((found.c.code == constant("complaint"), open_complaints)).label("open_complaints")
    return with_first_case(found, dialect).add_columns(counted)


async def to_chase(db: Database, departments: Sequence[str], now: datetime, limits: Limits) -> list[Chase]:
    async with db.read() as conn:
        return await chase_on(conn, departments, now, limits)


async def chase_on(conn: Any, departments: Sequence[str], now: datetime, limits: Limits) -> list[Chase]:
    """``to_chase`` on an open connection (the console's page shares it with its session lookup)."""
    today = beijing_today(now)
    table = rules()
    caught: dict[str, list[str]] = {}
    rows: dict[str, dict[str, Any]] = {}
    params = {
        **department_params(departments),
        "today": today,
        "warn_until": today + timedelta(days=limits.warn_days),
        "ordered_before": now - timedelta(hours=limits.pickup_hours),
        "created_before": now - timedelta(days=limits.awaiting_days),
    }
    statement = _queue(conn.dialect.name, tuple(table), len(departments))
    counts: dict[str, int] = {}
    dues: dict[str, date | None] = {}
    for found in dicts(await conn.execute(statement, params)) if statement is not None else []:
        annotated_row(found)
        sid, code = found["id"], found.pop("code")
        complaints_open, follow_up_due = found.pop("open_complaints"), found.pop("follow_up_due")
        if complaints_open is not None:
            counts[sid] = int(complaints_open)
        if follow_up_due is not None:
            dues[sid] = follow_up_due
        rows.setdefault(sid, found)
        caught.setdefault(sid, []).append(code)
    out = []
    for sid, codes in caught.items():
        ordered = sorted(codes, key=lambda c: table[c].urgency)
        first = table[ordered[0]]
        row = rows[sid]
        out.append(
            Chase(
                first,
                _why(first, row, limits, counts.get(sid, 0), dues.get(sid)),
                row,
                [_why(table[c], row, limits, counts.get(sid, 0), dues.get(sid)) for c in ordered[1:]],
            )
        )
    return sorted(out, key=_urgency)


def _urgency(chase: Chase) -> tuple[int, date, datetime]:
    return chase.rule.urgency, chase.shipment.get("due_by") or date.max, chase.shipment["created_at"]
