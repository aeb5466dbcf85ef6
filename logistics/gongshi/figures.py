"""The 公示 figures of one Beijing month, from plain facts: no database, no clock, no I/O.

Every definition the page states is implemented here, once (docs/gongshi.md has them in words):

- A shipment is *created* in the month of its ``created_at``.
- A shipment *ends* at its first non-refused ``delivered``, ``failed`` or ``returned`` event; that event's
  status is its outcome and its time (``occurred_at``) decides the month.
- *Transit time* = delivered − handed to post (its first non-refused ``picked_up`` event), for shipments delivered
  in the month that have one not after the delivery. Median and 90th percentile by the nearest-rank method:
  sort the n times; the p-th percentile is the ⌈p·n/100⌉-th smallest (so the median of an even count is the
  lower middle one).
- *On time* = delivered on or before ``due_by`` (the Beijing date of delivery ≤ ``due_by``), among the shipments
  delivered in the month that have a ``due_by``.
- *Failed or returned* share = ended as ``failed`` or ``returned`` / ended in the month.
- *Complaints* received in the month (by ``created_at``); *answered in time* = answered on or before the fifth
  working day after the day received (logistics/domain/deadlines.py).
- *Ratings* given in the month; *satisfied* = levels 5, 4, 3 (非常满意, 满意, 基本满意); 差评 are 1 and 2.
- *Follow-ups late* = follow-ups opened in the month that were closed after their ``due_by``, or are still open
  after it.

A cell's keys are the raw figures; small-cell suppression is applied when they are shown
(logistics/gongshi/suppress.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from logistics.domain.deadlines import beijing_today, due_by

BEIJING_OFFSET = timedelta(hours=8)  # China keeps UTC+8 all year
TOTAL = ""  # the district total's key among the departments (no department has an empty name)
KINDS = ("intake", "delivery")
ENDINGS = ("delivered", "failed", "returned")
MONTHS_BACK = 24  # the current month and the 24 before it
COMPLAINT_ANSWER_DAYS = 5  # working days
SATISFIED_LEVELS = frozenset({3, 4, 5})


def month_of(moment: datetime) -> str:
    """The Beijing month (``YYYY-MM``) of an aware moment: 2026-10-31T16:30Z is 2026-11."""
    return beijing_today(moment).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of a Beijing month ``YYYY-MM``."""
    year, mon = int(month[:4]), int(month[5:7])
    start = datetime.combine(date(year, mon, 1), time(0), tzinfo=UTC) - BEIJING_OFFSET
    following = date(year + (mon == 12), mon % 12 + 1, 1)
    return start, datetime.combine(following, time(0), tzinfo=UTC) - BEIJING_OFFSET


def shift_month(month: str, delta: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_shown(now: datetime) -> list[str]:
    """The current Beijing month first, then the 24 before it."""
    current = month_of(now)
    return [shift_month(current, -i) for i in range(MONTHS_BACK + 1)]


def is_month(value: str) -> bool:
    return (
        len(value) == 7
        and value[4] == "-"
        and value[:4].isdigit()
        and value[5:].isdigit()
        and 1 <= int(value[5:]) <= 12
    )


def nearest_rank(sorted_values: Sequence[int], percent: int) -> int:
    """The nearest-rank percentile of a non-empty ascending sequence."""
    rank = max(1, math.ceil(percent * len(sorted_values) / 100))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Ended:
    department: str
    kind: str
    status: str  # delivered | failed | returned
    occurred_at: datetime
    handed_at: datetime | None  # first non-refused picked_up
    due_by: date | None


@dataclass(frozen=True, slots=True)
class ComplaintFact:
    department: str
    created_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class FollowUpFact:
    department: str
    due_by: date
    closed_at: datetime | None


@dataclass
class MonthFacts:
    """What one month's figures are computed from."""

    created: list[tuple[str, str, int]] = field(default_factory=list)  # (department, kind, count)
    ended: list[Ended] = field(default_factory=list)
    complaints: list[ComplaintFact] = field(default_factory=list)
    ratings: list[tuple[str, int]] = field(default_factory=list)  # (department, level)
    follow_ups: list[FollowUpFact] = field(default_factory=list)


COUNT_KEYS = (
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
RATING_KEYS = ("ratings", "satisfied", "follow_ups", "follow_ups_late")


def empty_cell() -> dict[str, Any]:
    cell: dict[str, Any] = dict.fromkeys((*COUNT_KEYS, *RATING_KEYS), 0)
    cell["transit_median_s"] = None
    cell["transit_p90_s"] = None
    return cell


def compute_month(facts: MonthFacts, today: date) -> dict[str, dict[str, Any]]:
    """Cells per department and the district total (key ``TOTAL``) for one month. ``today`` is the Beijing date
    of the computation (a follow-up still open after its due date is late)."""
    cells: dict[str, dict[str, Any]] = {}
    transit: dict[str, list[int]] = {}

    def cell(department: str) -> list[dict[str, Any]]:
        for key in (department, TOTAL):
            if key not in cells:
                cells[key] = empty_cell()
        return [cells[department], cells[TOTAL]]

    for department, kind, count in facts.created:
        for c in cell(department):
            c[f"created_{kind}"] += count
    for e in facts.ended:
        delivered_on = beijing_today(e.occurred_at)
        seconds = None
        if e.status == "delivered" and e.handed_at is not None and e.handed_at <= e.occurred_at:
            seconds = int((e.occurred_at - e.handed_at).total_seconds())
        for key, c in zip((e.department, TOTAL), cell(e.department), strict=True):
            c["ended"] += 1
            if e.status != "delivered":
                c["failed_or_returned"] += 1
                continue
            c[f"delivered_{e.kind}"] += 1
            if e.due_by is not None:
                c["with_due"] += 1
                c["on_time"] += delivered_on <= e.due_by
            if seconds is not None:
                transit.setdefault(key, []).append(seconds)
    for complaint in facts.complaints:
        deadline = due_by(beijing_today(complaint.created_at), COMPLAINT_ANSWER_DAYS).due_by
        in_time = complaint.answered_at is not None and beijing_today(complaint.answered_at) <= deadline
        for c in cell(complaint.department):
            c["complaints"] += 1
            c["complaints_in_time"] += in_time
    for department, level in facts.ratings:
        for c in cell(department):
            c["ratings"] += 1
            c["satisfied"] += level in SATISFIED_LEVELS
    for fu in facts.follow_ups:
        late = (beijing_today(fu.closed_at) > fu.due_by) if fu.closed_at is not None else today > fu.due_by
        for c in cell(fu.department):
            c["follow_ups"] += 1
            c["follow_ups_late"] += late
    for key, seconds_list in transit.items():
        ordered = sorted(seconds_list)
        cells[key]["transit_n"] = len(ordered)
        cells[key]["transit_median_s"] = nearest_rank(ordered, 50)
        cells[key]["transit_p90_s"] = nearest_rank(ordered, 90)
    return cells


def departments_of(cells: Iterable[str]) -> list[str]:
    """Departments in a stable public order (by name), the district total left out."""
    return sorted(d for d in cells if d != TOTAL)
