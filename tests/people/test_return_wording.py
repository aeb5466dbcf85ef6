"""What the people's pages say about the unhappy path, in plain Chinese (logistics/domain/wording.py)."""

from __future__ import annotations

import pytest

from logistics.domain.statuses import STATUSES
from logistics.domain.wording import failure_reasons, next_action, status_text


@pytest.mark.parametrize("kind", ["delivery", "intake"])
def test_every_status_has_words_for_people(kind: str) -> None:
    for status in STATUSES:
        text = status_text(status, kind)
        assert text != status and not text.isascii(), (status, kind)


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        ("returning", "delivery", "未能送达，邮件正在退回办件窗口"),
        ("returned", "delivery", "邮件已退回办件窗口"),
        ("returning", "intake", "材料未能送达，正在退回寄件人"),
        ("returned", "intake", "材料已退回寄件人"),
        ("failed", "intake", "邮政上门取件未成功，本次预约已作废"),
    ],
)
def test_the_way_back_is_worded_for_the_side_it_goes_to(status: str, kind: str, expected: str) -> None:
    assert status_text(status, kind) == expected


def test_a_returning_envelope_tells_the_clerk_to_take_it_back() -> None:
    assert next_action("returning", "delivery") == ("returned", "退回件：交回办件窗口，由窗口人员扫描“退件签收”")
    assert next_action("returning", "intake")[0] is None


def test_the_staff_reason_list_is_the_ems_list_in_chinese() -> None:
    reasons = failure_reasons()
    assert sorted(reasons) == ["101", "102", "103", "104", "113", "115", "118", "124", "127", "130"]
    assert reasons["104"] == "收件人拒收" and reasons["118"] == "人已他往"
