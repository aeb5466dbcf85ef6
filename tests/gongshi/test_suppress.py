"""Small-cell suppression: counts under five read "<5", shares and times from under five shipments too, a
month without cases reads "—", and no hidden count can be worked back from the district total."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from logistics.gongshi.figures import TOTAL, empty_cell
from logistics.gongshi.suppress import HIDDEN, NONE, SMALL, protect_counts, protect_month

MARKET, CIVIL, TAX, PUBLIC_SECURITY = "上街区市场监督管理局", "上街区民政局", "上街区税务局", "上街区公安分局"


def cell(**values: int | None) -> dict[str, int | None]:
    return {**empty_cell(), **values}


def test_a_count_of_one_to_four_reads_fewer_than_five_and_zero_reads_zero() -> None:
    shown, total = protect_counts({MARKET: 3, CIVIL: 0, TAX: 120}, 123)
    assert shown == {MARKET: SMALL, CIVIL: 0, TAX: 120}
    assert total == HIDDEN  # 123 − 0 − 120 would give the 3 back


def test_two_hidden_cells_that_cannot_be_told_apart_keep_the_total() -> None:
    shown, total = protect_counts({MARKET: 2, CIVIL: 3, TAX: 40}, 45)
    assert shown == {MARKET: SMALL, CIVIL: SMALL, TAX: 40}
    assert total == 45  # 5 = 1+4 = 2+3 = 3+2 = 4+1


def test_hidden_cells_that_must_all_be_one_hide_the_total() -> None:
    assert protect_counts({MARKET: 1, CIVIL: 1, TAX: 40}, 42)[1] == HIDDEN
    assert protect_counts({MARKET: 4, CIVIL: 4, TAX: 40}, 48)[1] == HIDDEN


def test_a_small_total_of_four_ones_is_hidden_too() -> None:
    # Four departments under five and a total under five: each must be 1.
    values = {MARKET: 1, CIVIL: 1, TAX: 1, PUBLIC_SECURITY: 1}
    assert protect_counts(values, 4)[1] == HIDDEN


def test_a_share_from_fewer_than_five_shipments_is_hidden_and_from_none_reads_a_dash() -> None:
    rows = protect_month(
        {
            MARKET: cell(with_due=4, on_time=4, ended=12, failed_or_returned=3),
            CIVIL: cell(with_due=0, on_time=0, ended=0, failed_or_returned=0),
            TOTAL: cell(with_due=4, on_time=4, ended=12, failed_or_returned=3),
        }
    )
    assert rows[MARKET]["on_time_share"] == SMALL
    assert rows[MARKET]["failed_share"] == 25.0
    assert rows[CIVIL]["on_time_share"] == NONE
    assert rows[CIVIL]["failed_share"] == NONE


def test_a_median_of_fewer_than_five_transit_times_is_hidden() -> None:
    rows = protect_month(
        {
            MARKET: cell(transit_n=4, transit_median_s=36000, transit_p90_s=72000),
            TOTAL: cell(transit_n=5, transit_median_s=36000, transit_p90_s=90000),
        }
    )
    assert rows[MARKET]["transit_median_h"] == SMALL
    assert rows[TOTAL]["transit_median_h"] == 10.0
    assert rows[TOTAL]["transit_p90_h"] == 25.0


def possible_values(shown: dict[str, object], total_shown: object, truth: dict[str, int]) -> dict[str, set[int]]:
    """A reader's brute force: every value of each hidden cell consistent with what the table shows."""
    hidden = [d for d, v in shown.items() if v == SMALL]
    visible = sum(v for v in shown.values() if isinstance(v, int))
    found: dict[str, set[int]] = {d: set() for d in hidden}
    for guess in itertools.product(range(1, 5), repeat=len(hidden)):
        whole = visible + sum(guess)
        if isinstance(total_shown, int) and whole != total_shown:
            continue
        if total_shown == SMALL and not 1 <= whole <= 4:
            continue
        for d, v in zip(hidden, guess, strict=True):
            found[d].add(v)
    for d in hidden:
        assert truth[d] in found[d]  # the table never lies
    return found


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 200)), min_size=1, max_size=7))
def test_no_hidden_count_can_be_worked_back_from_the_total(counts: list[int]) -> None:
    values = {f"部门{i}": v for i, v in enumerate(counts)}
    total = sum(counts)
    shown, total_shown = protect_counts(values, total)
    for department, options in possible_values(shown, total_shown, values).items():
        assert len(options) >= 2, (department, values, total_shown)
    if total_shown == SMALL:
        assert 1 <= total <= 4
    if isinstance(total_shown, int):
        assert total_shown == total and (total == 0 or total >= 5)
