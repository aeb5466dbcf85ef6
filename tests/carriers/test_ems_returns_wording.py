"""Failed attempts, refusals and returns as EMS words them: the reason of every 705/206/207/708/711, read from
EMS's own fields when it sends them and from the wording when it does not (carriers/ems/failure_reasons.csv)."""

from __future__ import annotations

from typing import Any

import pytest

from carriers.ems import codes
from carriers.ems.messages import event_from_item

WAYBILL = "1151263808012"


def _event(op_code: str, op_name: str, op_desc: str, **fields: str) -> dict[str, Any]:
    return {
        "waybillNo": WAYBILL,
        "orderNo": "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C",
        "opTime": "2026-12-03 15:42:10",
        "opCode": op_code,
        "opName": op_name,
        "opDesc": op_desc,
        "opOrgProvName": "河南省",
        "opOrgCity": "郑州市",
        "opOrgName": "郑州市上街区揽投部",
        "operatorName": "刘洋",
        **fields,
    }


# One realistic 未妥投 text per reason the issue lists, as couriers' terminals and EMS's site word them.
REASON_TEXTS = [
    ("因收件人名址有误/不详且电话无法接通，将再次联系收件人进行投递", "101"),
    ("未妥投，原因：查无此人，投递员:刘洋 139****2222", "102"),
    ("未妥投，原因：收件人不在指定地址", "103"),
    ("因收件人不在指定地址,将再次投递", "103"),
    ("未妥投,原因:收件人拒收", "104"),
    ("收件人拒绝签收,未妥投", "104"),
    ("【汇侨投递部】投递结果反馈-未妥投,备注(未联系上收件人，安排再投)", "113"),
    ("收件人电话关机，无法联系，未妥投", "113"),
    ("未妥投，原因：收件人要求自取，请到上街区中心路邮政所领取", "115"),
    ("未妥投，原因：人已他往", "118"),
    ("收件人已搬迁，新地址不明，未妥投", "118"),
    ("未妥投，原因：地址不详，请寄件人补充门牌号", "124"),
    ("邮件逾期未领，投递员收回", "127"),
    ("未妥投，原因：其他原因，请联系当地邮政所", "130"),
    ("未妥投,原因代码为(118),请联系寄件人", "118"),
]


@pytest.mark.parametrize(("op_desc", "reason_code"), REASON_TEXTS)
def test_a_failed_attempt_reads_its_reason_from_the_wording(op_desc: str, reason_code: str) -> None:
    event = event_from_item(_event("705", "投递结果反馈-未妥投", op_desc))
    assert event.status == "delivery_failed"
    assert event.attempt == "delivery"
    assert event.reason_code == reason_code
    assert event.reason == codes.reason_text(reason_code)


def test_every_reason_the_issue_lists_has_wording_tested_above() -> None:
    assert {code for _, code in REASON_TEXTS} == set(codes.FAILURE_REASONS)


def test_reason_fields_win_over_the_wording() -> None:
    event = event_from_item(
        _event("705", "投递结果反馈-未妥投", "因收件人不在指定地址,将再次投递", reasonCode="104", reasonDesc="拒收")
    )
    assert (event.reason_code, event.reason) == ("104", "拒收")


def test_a_reason_code_without_words_takes_the_tables_words() -> None:
    event = event_from_item(_event("705", "投递结果反馈-未妥投", "未妥投", reasonCode="127"))
    assert (event.reason_code, event.reason) == ("127", "逾期未领取")


def test_a_reason_code_outside_the_table_is_kept_as_ems_gave_it() -> None:
    event = event_from_item(
        _event("705", "投递结果反馈-未妥投", "未妥投", reasonCode="116", reasonDesc="法定假日无法投递")
    )
    assert (event.reason_code, event.reason) == ("116", "法定假日无法投递")


def test_a_failed_attempt_without_a_readable_reason_has_none() -> None:
    event = event_from_item(_event("705", "投递结果反馈-未妥投", "预约2026.12.05再投"))
    assert event.attempt == "delivery"
    assert (event.reason_code, event.reason) == (None, None)


def test_a_delivery_has_no_reason_even_when_its_text_looks_like_one() -> None:
    # "收件人不在" inside a delivered text (a neighbour signed) is no failure.
    event = event_from_item(_event("704", "投递结果反馈-妥投", "已签收,他人代收:邻居(收件人不在家),投递员:刘洋"))
    assert event.status == "delivered"
    assert (event.reason_code, event.reason, event.attempt) == (None, None, None)


def test_the_return_journey_is_returning_with_its_reason() -> None:
    event = event_from_item(_event("708", "退回", "邮件退回中,原因:收件人拒收,已离开【郑州市邮区中心】"))
    assert event.status == "returning"
    assert event.attempt is None
    assert (event.reason_code, event.reason) == ("104", "收件人拒收")


def test_back_with_the_sender_is_returned() -> None:
    event = event_from_item(_event("711", "退回妥投", "退回邮件已妥投,寄件人签收"))
    assert event.status == "returned"


def test_a_failed_door_pickup_moves_nothing_but_is_an_attempt_with_a_reason() -> None:
    event = event_from_item(_event("206", "揽收失败", "揽收失败,原因:寄件人不在指定地址,投递员:刘洋 139****2222"))
    assert event.status is None
    assert event.attempt == "pickup"
    assert (event.reason_code, event.reason) == ("103", "收件人不在指定地址")


def test_a_voided_pickup_order_fails_and_keeps_its_reason() -> None:
    event = event_from_item(
        _event(
            "207",
            "作废",
            "揽收未成功,订单已作废,原因:寄件人电话无法接通",
            reasonCode="113",
            reasonDesc="联系不上寄件人",
        )
    )
    assert event.status == "failed"
    assert event.attempt is None
    assert (event.reason_code, event.reason) == ("113", "联系不上寄件人")


@pytest.mark.parametrize(
    ("op_name", "op_desc", "status", "attempt"),
    [
        ("退回", "邮件退回中,已到达【郑州市邮区中心】", "returning", None),
        ("", "您的快件已退回，正在返回寄件人途中", "returning", None),
        ("退件", "", "returning", None),
        ("", "收件人拒收,快件退回寄件人", "returning", None),
        ("拒收", "", "returning", None),
        ("退回妥投", "", "returned", None),
        ("", "退回邮件已由寄件人签收", "returned", None),
        ("", "快件已成功退回至寄件人", "returned", None),
        ("未妥投补录", "收件人拒收", "delivery_failed", "delivery"),
        ("揽收失败", "寄件人不在家", None, "pickup"),
        ("", "上门揽收未成功,原因:寄件人要求改期", None, "pickup"),
        ("订单作废", "揽收未成功,订单已作废", "failed", None),
        ("揽收", "已揽收", "picked_up", None),
    ],
)
def test_unknown_codes_are_read_by_their_wording(
    op_name: str, op_desc: str, status: str | None, attempt: str | None
) -> None:
    assert codes.status_for("7321", op_name, op_desc) == status
    assert codes.attempt_for("7321", op_name, op_desc) == attempt
