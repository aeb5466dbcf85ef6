"""Statutory delivery deadlines: ``due_by`` from the approval decision's date.

A 行政许可 decision is to be served within 10 days, and the 行政许可法 counts its limits in working days without
statutory holidays; so ``delivery_days`` counts working days, with the State Council's holidays and 调休 make-up
working days (the ``chinesecalendar`` package). As 民法典 §201 says, the decision's own day is not counted: the
deadline is the Nth working day after it, and so always a working day (§203 is met by construction).

A year the calendar package does not cover yet (it is updated each November) never silently becomes Monday to
Friday: such a deadline is counted Monday to Friday and marked provisional, with a warning in the log and the
``logistics_deadlines_provisional_total`` metric, so the operator updates the package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import chinese_calendar

from logistics import metrics

log = logging.getLogger("logistics.deadlines")
DEFAULT_DELIVERY_DAYS = 10  # 行政许可法 §44: served within 10 days of the decision
MAX_DELIVERY_DAYS = 60


def beijing_today(now: datetime) -> date:
    """The Beijing calendar date at ``now`` (China keeps UTC+8 all year)."""
    return (now.astimezone(UTC) + timedelta(hours=8)).date()


@dataclass(frozen=True, slots=True)
class Deadline:
    due_by: date
    provisional: bool  # counted past the calendar's covered years: Monday to Friday, no holidays


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool | None:
    """True/False from the official calendar (调休 included); None for a year it does not cover."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def due_by(decision: date, working_days: int) -> Deadline:
    day, counted, provisional = decision, 0, False
    while counted < working_days:
        day += timedelta(days=1)
        working = is_working_day(day)
        if working is None:
            provisional, working = True, day.weekday() < 5
        counted += working
    if provisional:
        metrics.DEADLINES_PROVISIONAL.inc()
        log.warning("deadline_calendar_not_covered", extra={"year": day.year, "due_by": day.isoformat()})
    return Deadline(day, provisional)
