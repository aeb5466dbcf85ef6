"""The forward-only rule for every ordered pair of statuses, written out as a table (not derived from the code).

Rows: the shipment's status now; columns: the status an event brings. ``x`` = it moves, ``.`` = it stays
(the event is still kept in the history). The columns, in order:
aw awaiting_applicant, pe pending, or ordered, pu picked_up, it in_transit, od out_for_delivery, dv delivered,
df delivery_failed, rg returning, rt returned, ca cancelled, fa failed, de declined.
"""

from __future__ import annotations

import pytest

from logistics.domain.statuses import STATUSES, may_move

COLUMNS = "aw pe or pu it od dv df rg rt ca fa de".split()
NAMES = {
    "aw": "awaiting_applicant",
    "pe": "pending",
    "or": "ordered",
    "pu": "picked_up",
    "it": "in_transit",
    "od": "out_for_delivery",
    "dv": "delivered",
    "df": "delivery_failed",
    "rg": "returning",
    "rt": "returned",
    "ca": "cancelled",
    "fa": "failed",
    "de": "declined",
}
TABLE = """
      aw pe or pu it od dv df rg rt ca fa de
aw    .  x  x  x  x  x  x  x  x  x  x  x  x
pe    .  .  x  x  x  x  x  x  x  x  x  x  .
or    .  .  .  x  x  x  x  x  x  x  x  x  .
pu    .  .  .  .  x  x  x  x  x  x  .  .  .
it    .  .  .  .  .  x  x  x  x  x  .  .  .
od    .  .  .  .  .  .  x  x  x  x  .  .  .
df    .  .  .  .  .  x  x  .  x  x  .  .  .
rg    .  .  .  .  .  .  .  .  .  x  .  .  .
dv    .  .  .  .  .  .  .  .  .  .  .  .  .
rt    .  .  .  .  .  .  .  .  .  .  .  .  .
ca    .  .  .  .  .  .  .  .  .  .  .  .  .
fa    .  .  .  .  .  .  .  .  .  .  .  .  .
de    .  .  .  .  .  .  .  .  .  .  .  .  .
"""


def _pairs() -> list[tuple[str, str, bool]]:
    header, *rows = TABLE.strip().splitlines()
    assert header.split() == COLUMNS
    pairs = []
    for row in rows:
        current, *marks = row.split()
        assert len(marks) == len(COLUMNS), row
        pairs += [(NAMES[current], NAMES[column], mark == "x") for column, mark in zip(COLUMNS, marks, strict=True)]
    return pairs


PAIRS = _pairs()


def test_the_table_covers_every_ordered_pair_of_statuses() -> None:
    assert sorted((current, new) for current, new, _ in PAIRS) == sorted((a, b) for a in STATUSES for b in STATUSES)


@pytest.mark.parametrize(("current", "new", "moves"), PAIRS, ids=[f"{c}->{n}" for c, n, _ in PAIRS])
def test_may_move(current: str, new: str, moves: bool) -> None:
    assert may_move(current, new) is moves
