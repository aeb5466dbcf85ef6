"""Who signed for a parcel, read from EMS's 妥投 wording: every text of shared/ems/wording.md's list, the
simulator's wordings, variants, and texts the table must leave as unknown."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.ems.signers import CLASSES, RULES, Signer, classify, log_unknown, shape

# (text, class, name, relation): the real texts first, in the order wording.md lists them.
REAL = [
    ("已签收,本人签收 :++,投递员:张三138****0000", "addressee", None, None),
    ("已签收,本人签收:张三;,投递员：李四", "addressee", "张三", None),
    ("投递并签收，签收人：本人收", "addressee", None, None),
    ("您的邮件已妥收【本人签收，本人】", "addressee", None, None),
    ("您的快件已代签收【家人，，】，如有疑问请电联快递员【张三，电话:138****0000】", "family", None, "家人"),
    ("您的快件已代签收【家人，已转隆宝邮政所13号到达】", "family", None, "家人"),
    ("北京市，您的快件已代签收【家门口】", "other", None, None),
    ("已签收,他人代收：丰巢,投递员:张三", "locker_or_station", "丰巢", None),
    ("投递并签收，签收人：他人收 91号菜鸟驿站", "locker_or_station", "91号菜鸟驿站", None),
    ("【深圳市】 投递并签收，签收人：他人收 电联放e栈", "locker_or_station", "电联放e栈", None),
    ("您的快件已派送至【龙华区民治街道23栋S106号店】，自提点电话:0755-23456789", "locker_or_station",
     "龙华区民治街道23栋S106号店", None),
    ("已签收,收发室 代收,投递员：张三", "unit_mailroom", None, "收发室"),
    ("投递并签收，签收人：单位收发章 *【毕节地区】", "unit_mailroom", None, "单位收发章"),
    ("已签收,其他：中心商店", "other", "中心商店", None),
    ("已签收,他人收[龙锦苑投递组]", "other", "龙锦苑投递组", None),
    ("您的快件已由包裹柜", "locker_or_station", None, None),
]

# What the simulator sends (the contract), several variants per class.
SIMULATED = [
    ("已签收,本人签收,投递员:王强 138****5678", "addressee", None, None),
    ("已签收,本人签收:欧阳娜娜,投递员:王强 138****5678", "addressee", "欧阳娜娜", None),
    ("已签收,他人代收:家人,投递员:王强 138****5678", "family", None, "家人"),
    ("已签收,他人代收：配偶,投递员:刘洋 139****1234", "family", None, "配偶"),
    ("您的快件已代签收【母亲，，】，如有疑问请电联快递员【刘洋，电话:139****1234】", "family", None, "母亲"),
    ("快件已由【金水区农业路菜鸟驿站】代收", "locker_or_station", "金水区农业路菜鸟驿站", None),
    ("已签收,他人代收:丰巢快递柜", "locker_or_station", "丰巢快递柜", None),
    ("快件已由【上街区峡窝镇马固村村邮站】代收", "locker_or_station", "上街区峡窝镇马固村村邮站", None),
    ("已签收,单位收发室代收", "unit_mailroom", None, "单位收发室"),
    ("已签收,他人代收:门卫,投递员:王强 138****5678", "unit_mailroom", None, "门卫"),
    ("已签收,他人代收:物业,投递员:王强 138****5678", "unit_mailroom", None, "物业"),
    ("已签收,他人代收:同事,投递员:王强 138****5678", "other", None, "同事"),
    ("已签收,他人代收:邻居", "other", None, "邻居"),
    ("已签收,他人代收:王芳,投递员:王强 138****5678", "other", "王芳", None),
    ("您的快件已派送至【金水区农业路91号店】,自提点已代收", "locker_or_station", "金水区农业路91号店", None),
    ("已签收,他人代收:马固村村邮站,投递员:刘洋", "locker_or_station", "马固村村邮站", None),
    ("已签收,其他:济源路商店", "other", "济源路商店", None),
    ("郑州市,您的快件已代签收【家门口】", "other", None, None),
]

# Delivered, yet the text does not say who took it: never a guess.
UNKNOWN = [
    "已妥投",
    "已签收",
    "投递结果反馈-妥投",
    "您的快件已取走",
    "已按面单地址投送",
    "【郑州市金水区揽投部】已妥投",
    "已妥投,投递员:王强",
]


@pytest.mark.parametrize(("text", "cls", "name", "relation"), REAL + SIMULATED)
def test_wording_gives_the_class_and_what_ems_wrote(
    text: str, cls: str, name: str | None, relation: str | None
) -> None:
    assert classify(text) == Signer(cls, name, relation, code_checked=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", UNKNOWN)
def test_a_wording_that_names_no_signer_is_unknown(text: str) -> None:
    assert classify(text) == Signer("unknown")


def test_an_empty_text_is_unknown() -> None:
    assert classify("") == classify(None) == Signer("unknown")


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("已签收,本人签收(已核验收件人安全码),投递员:王强 138****5678", "addressee"),
        ("已签收,他人代收:家人(已核验收件人安全码),投递员:王强 138****5678", "family"),
        ("已签收，本人签收（已核验收件人安全码），投递员：王强", "addressee"),
        ("投递并签收,签收人:本人收,已核验收件人安全码", "addressee"),
        ("您的快件已代签收【家人,已核验收件人安全码】,如有疑问请电联快递员【刘洋,电话:13903711234】", "family"),
    ],
)
def test_the_safety_code_phrase_marks_the_code_as_checked(text: str, cls: str) -> None:
    signer = classify(text)
    assert (signer.cls, signer.code_checked) == (cls, True)


def test_a_text_without_the_phrase_checked_no_code() -> None:
    assert classify("已签收,本人签收,投递员:王强 138****5678").code_checked is False


def test_a_housing_estate_for_families_is_an_address_not_a_relative() -> None:
    # 家属院 (staff families' compound) is part of countless addresses.
    assert classify("签收人：他人收 家属院菜鸟驿站").cls == "locker_or_station"


def test_explicitly_not_the_addressee_is_other() -> None:
    assert classify("已签收,非本人签收,投递员:王强").cls == "other"


def test_full_width_and_ascii_punctuation_read_the_same() -> None:
    assert classify("已签收，他人代收：家人，投递员：王强") == classify("已签收,他人代收:家人,投递员:王强")


def test_the_table_loads_every_class_but_unknown() -> None:
    kinds = {rule.kind for rule in RULES}
    assert kinds == (set(CLASSES) - {"unknown"}) | {"verified_by_code"}


CJK_NAME = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2, max_size=4)


@given(name=CJK_NAME)
def test_the_addressees_name_comes_back_as_written(name: str) -> None:
    signer = classify(f"已签收,本人签收:{name},投递员:王强 138****5678")
    assert signer.cls == "addressee"
    assert signer.name == (None if name in ("本人", "他人", "家人", "签收", "代收") else name)


@given(station=CJK_NAME)
def test_a_named_station_is_a_station_and_keeps_its_name(station: str) -> None:
    signer = classify(f"快件已由【{station}菜鸟驿站】代收")
    assert (signer.cls, signer.name) == ("locker_or_station", f"{station}菜鸟驿站")


@given(text=st.text(max_size=200))
def test_any_text_gets_a_class_and_never_an_error(text: str) -> None:
    signer = classify(text)
    assert signer.cls in CLASSES
    assert signer.name is None or 0 < len(signer.name) <= 40


@given(text=st.text(alphabet=st.sampled_from("0123456789 ,.:;-*【】()已到达离开处理中心"), max_size=60))
def test_text_without_a_signing_word_is_unknown(text: str) -> None:
    assert classify(text).cls == "unknown"


def test_an_unknown_wording_is_logged_by_its_shape_without_the_text(caplog: pytest.LogCaptureFixture) -> None:
    text = "已投递,交李建国亲收,投递员:王强 13812345678"
    assert classify(text).cls == "unknown"
    with caplog.at_level(logging.WARNING, logger="carriers.ems.signers"):
        log_unknown("704", text)
    (record,) = caplog.records
    assert record.getMessage() == "signer_wording_unknown"
    assert record.carrier_code == "704"  # type: ignore[attr-defined]
    logged = repr(record.__dict__)
    for personal in ("李建国", "王强", "13812345678"):
        assert personal not in logged
    assert record.shape == shape(text) == "汉汉汉,汉汉汉汉汉汉,汉汉汉:汉汉 99999999999"  # type: ignore[attr-defined]
