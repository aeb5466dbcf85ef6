"""A rating's comment loses every phone and resident-ID number before it is stored, however it was typed; what
names a parcel or a case (a waybill, a case number) and ordinary prose stay."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labels.privacy import REMOVED, remove_numbers_in
from logistics.api.ratings import COMMENT_MAX, check, clean_comment, parse_level

REMOVED_SHAPES = [
    "13812345678",
    "138 1234 5678",
    "138-1234-5678",
    "+86 138 1234 5678",
    "+8613812345678",
    "008613812345678",
    "８６１３８１２３４５６７８",
    "１３８１２３４５６７８",
    "0371-68123456",
    "037168123456",
    "(0371)68123456",
    "（０３７１）６８１２３４５６",
    "0371 6812 3456",
    "010-88886666",
    "0371-68123456-8001",
    "0371-68123456转8001",
    "68123456",
    "6812345",
    "410105199003071234",
    "41010519900307123X",
    "41010519900307123x",
    "４１０１０５１９９００３０７１２３Ｘ",
    "410105 19900307 123X",
    "410105900307123",
]


@pytest.mark.parametrize("number", REMOVED_SHAPES)
def test_a_phone_or_id_number_is_removed_whole(number: str) -> None:
    cleaned = clean_comment(f"投递员态度不好，我的电话{number}，请回电。")
    assert cleaned == f"投递员态度不好，我的电话{REMOVED}，请回电。"


@pytest.mark.parametrize("number", ["13812345678", "41010519900307123X", "0371-68123456"])
def test_a_number_at_either_end_or_alone_is_removed(number: str) -> None:
    assert clean_comment(number) == REMOVED
    assert clean_comment(f"{number}。") == f"{REMOVED}。"
    assert clean_comment(f"联系{number}") == f"联系{REMOVED}"


def test_two_numbers_side_by_side_both_go() -> None:
    assert clean_comment("13812345678和13937112345都打不通") == f"{REMOVED}和{REMOVED}都打不通"


@pytest.mark.parametrize(
    "text",
    [
        "运单号1295780512499一直没有更新",
        "办件编号410106-2018-00095",
        "12345热线说会转交",
        "400-820-5555 客服没人接",
        "2026年12月4日下午才送到，晚了3天",
        "送到济源路8号院3号楼",
        "非常满意，谢谢上街区政务服务中心！",
    ],
)
def test_what_names_no_person_stays(text: str) -> None:
    assert clean_comment(text) == text


def test_control_characters_and_blank_runs_go_like_a_complaints() -> None:
    assert clean_comment("  很好\x00\x07   谢谢\r\n再见  ") == "很好 谢谢\n再见"


@given(st.text(alphabet="0123456789 -+()（）转Xx０１２３４５６７８９、，。电话身份证号", max_size=60))
def test_no_mobile_survives_whatever_surrounds_it(prefix: str) -> None:
    cleaned = remove_numbers_in(f"{prefix}，手机13812345678。")
    assert "13812345678" not in cleaned and "12345678" not in cleaned


@given(st.text(max_size=300))
def test_cleaning_is_total_and_idempotent(text: str) -> None:
    once = clean_comment(text)
    assert clean_comment(once) == once


def test_levels_are_the_five_of_the_scale_and_nothing_else() -> None:
    assert [parse_level(v) for v in ("5", "4", "3", "2", "1", 3)] == [5, 4, 3, 2, 1, 3]
    assert [parse_level(v) for v in ("0", "6", "-1", "3.0", "满意", "", None, True, 10**20)] == [None] * 9


def test_a_missing_level_or_a_long_comment_is_refused_in_chinese() -> None:
    assert check(None, "") == ("level", "请选择评价等级")
    assert check(4, "好" * COMMENT_MAX) is None
    assert check(4, "好" * (COMMENT_MAX + 1)) == ("comment", f"评价内容太长了（最多{COMMENT_MAX}个字）")
