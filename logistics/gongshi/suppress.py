"""Small-cell suppression of one month's table: what may be shown of each raw figure. Pure.

Rules (accountability.md; stated on the page):

- A count of 1–4 shows as ``"<5"`` (``SMALL``); 0 shows as 0.
- A share, median or percentile drawn from 1–4 shipments (its denominator) shows as ``"<5"``; from none, ``"—"``
  (``NONE``): no 0 % or 100 % for a department without cases.
- Secondary suppression: a department's hidden count must not be recomputable from the district total minus the
  visible cells. A reader knows each hidden count lies in 1…4 and the hidden cells sum to the total minus the
  visible ones; with k hidden cells summing to S (or, for a total shown as "<5", to something in 1…4), cell i
  can only be v ∈ [S_lo − 4(k−1), S_hi − (k−1)] ∩ [1, 4]. When that leaves one value for any hidden cell
  (k = 1, or all ones, or all fours), the total of that column is hidden instead (``"*"``, ``HIDDEN``). The
  total is the only published sum of a column, so no other equation exists to solve.
"""

from __future__ import annotations

from typing import Any

from logistics.gongshi.figures import TOTAL

SMALL = "<5"
HIDDEN = "*"
NONE = "—"
THRESHOLD = 5

# Counts shown per department and summed in the district total (the columns secondary suppression protects).
COUNT_COLUMNS = (
    "created_intake",
    "created_delivery",
    "delivered_intake",
    "delivered_delivery",
    "complaints",
    "complaints_in_time",
    "ratings",
    "follow_ups_late",
)
# Shares: (numerator, denominator), shown in per cent with one decimal.
SHARE_COLUMNS = {
    "on_time_share": ("on_time", "with_due"),
    "failed_share": ("failed_or_returned", "ended"),
    "satisfied_share": ("satisfied", "ratings"),
}
# Times: (raw key, its count), shown in hours with one decimal.
TIME_COLUMNS = {"transit_median_h": ("transit_median_s", "transit_n"), "transit_p90_h": ("transit_p90_s", "transit_n")}
COLUMNS = (
    "created_intake",
    "created_delivery",
    "delivered_intake",
    "delivered_delivery",
    "transit_median_h",
    "transit_p90_h",
    "on_time_share",
    "failed_share",
    "complaints",
    "complaints_in_time",
    "ratings",
    "satisfied_share",
    "follow_ups_late",
)

Shown = int | float | str | None  # a number, SMALL, HIDDEN, NONE; None when the figure is not kept at all


def show_count(value: int | None) -> Shown:
    if value is None:
        return None
    return SMALL if 0 < value < THRESHOLD else value


def show_from(denominator: int | None, value: float | None) -> Shown:
    """A figure drawn from ``denominator`` shipments (a share, a median)."""
    if denominator is None:
        return None
    if denominator == 0 or value is None:
        return NONE
    if denominator < THRESHOLD:
        return SMALL
    return round(value, 1)


def derivable(hidden: int, low: int, high: int) -> bool:
    """Would some hidden cell be known exactly, given ``hidden`` cells each in 1…4 summing to between low and high?"""
    if hidden == 0:
        return False
    rest = hidden - 1
    first, last = max(1, low - 4 * rest), min(THRESHOLD - 1, high - rest)
    return first >= last


def protect_counts(values: dict[str, int], total: int) -> tuple[dict[str, Shown], Shown]:
    """One count column: the shown value per department, and the total's."""
    shown = {d: show_count(v) for d, v in values.items()}
    hidden = [v for v in values.values() if 0 < v < THRESHOLD]
    visible_sum = sum(v for v in values.values() if not 0 < v < THRESHOLD)
    if total >= THRESHOLD:
        low = high = total - visible_sum
        total_shown: Shown = total
    elif total > 0:
        low, high = 1, THRESHOLD - 1  # the total itself reads "<5"; visible cells are then all 0
        total_shown = SMALL
    else:
        return shown, 0
    if derivable(len(hidden), low, high):
        total_shown = HIDDEN
    return shown, total_shown


def protect_month(cells: dict[str, dict[str, Any]]) -> dict[str, dict[str, Shown]]:
    """Raw cells of one month (departments and ``TOTAL``) → what each row shows, column by column."""
    departments = [d for d in cells if d != TOTAL]
    rows: dict[str, dict[str, Shown]] = {d: {} for d in cells}
    for column in COUNT_COLUMNS:
        shown, total_shown = protect_counts({d: cells[d][column] for d in departments}, cells[TOTAL][column])
        for d in departments:
            rows[d][column] = shown[d]
        rows[TOTAL][column] = total_shown
    for d, cell in cells.items():
        for column, (numerator, denominator) in SHARE_COLUMNS.items():
            n, den = cell[numerator], cell[denominator]
            rows[d][column] = show_from(den, 100 * n / den if n is not None and den else None)
        for column, (key, count) in TIME_COLUMNS.items():
            seconds = cell[key]
            rows[d][column] = show_from(cell[count], seconds / 3600 if seconds is not None else None)
    return rows
