"""Statuses and the forward-only rules (docs/integration.md): the only place that decides if a status may change."""

from __future__ import annotations

from typing import Literal

Status = Literal[
    "awaiting_applicant",
    "pending",
    "ordered",
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "delivery_failed",
    "returning",
    "returned",
    "cancelled",
    "failed",
    "declined",
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]

FINAL = frozenset({"delivered", "returned", "cancelled", "failed", "declined"})

# Progress rank along the main path; side paths sit where they happen. delivery_failed shares a rank
# with out_for_delivery so a re-attempt (702 after 705) may move between them. returning sits after them and
# before the ends: the way back (after a refusal or the last attempt) ends only in returned.
RANK: dict[str, int] = {
    "awaiting_applicant": 0,
    "pending": 1,
    "ordered": 2,
    "picked_up": 3,
    "in_transit": 4,
    "out_for_delivery": 5,
    "delivery_failed": 5,
    "returning": 6,
    "delivered": 7,
    "returned": 7,
    "cancelled": 7,
    "failed": 7,
    "declined": 7,
}

# The hall decides what happens to a parcel that came back or is on its way (resend or resolve).
RETURN_STATUSES = frozenset({"returning", "returned"})

CANCELLABLE = frozenset({"awaiting_applicant", "pending", "ordered"})

Source = Literal["api", "carrier_push", "carrier_poll", "scan", "applicant", "system", "console"]


def may_move(current: str, new: str) -> bool:
    """True when a shipment in ``current`` may take ``new``: never from a final status, never backwards."""
    if current in FINAL or current == new:
        return False
    if new in ("cancelled", "failed"):
        return current in CANCELLABLE
    if new == "declined":
        return current == "awaiting_applicant"
    if current == "returning":
        # A parcel on its way back is not delivered to the recipient any more: a 704 now contradicts the 708.
        return new == "returned"
    return RANK[new] >= RANK[current]
