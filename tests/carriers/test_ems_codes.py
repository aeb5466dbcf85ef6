import json
from pathlib import Path
from typing import get_args

import pytest

from carriers.base import TrackingStatus
from carriers.ems import codes
from carriers.ems.messages import event_from_item

FIXTURES = Path(__file__).parent / "fixtures" / "ems"


def _trace_items() -> list[dict[str, str]]:
    answer = json.loads((FIXTURES / "track_040001.json").read_text(encoding="utf-8"))
    return json.loads(answer["retBody"])["responseItems"]


@pytest.mark.parametrize(
    ("op_code", "expected"),
    [
        ("203", "picked_up"),
        ("305", "in_transit"),
        ("954", "in_transit"),
        ("306", "in_transit"),
        ("702", "out_for_delivery"),
        ("704", "delivered"),
        ("705", "delivery_failed"),
    ],
)
def test_known_codes_come_from_the_table(op_code: str, expected: str) -> None:
    assert codes.status_for(op_code, "", "") == expected


def test_table_is_loaded_from_csv_with_names() -> None:
    assert codes.EVENT_CODES["705"].name == "投递结果反馈-未妥投"
    assert codes.EVENT_CODES["912"].status == "in_transit"
    assert len(codes.EVENT_CODES) >= 16


def test_every_table_status_is_in_the_public_vocabulary() -> None:
    allowed = set(get_args(TrackingStatus))
    assert {c.status for c in codes.EVENT_CODES.values()} - {None} <= allowed


def test_every_code_in_the_sample_trace_is_known() -> None:
    assert all(item["opCode"] in codes.EVENT_CODES for item in _trace_items())


def test_table_beats_the_wording() -> None:
    # 705's name contains 妥投; the table must win over the text rule that would say delivered.
    assert codes.status_for("705", "投递结果反馈-未妥投", "收件人已签收部分") == "delivery_failed"
    assert codes.status_for("203", "收寄", "邮件已退回") == "picked_up"


@pytest.mark.parametrize(
    ("op_name", "op_desc", "expected"),
    [
        ("退回妥投", "", "returned"),
        ("", "邮件已退回寄件人,退回原因:收件人拒收", "returned"),
        ("退件处理", "", "returning"),
        ("收件人拒收", "", "returning"),
        ("投递结果反馈-未妥投补录", "", "delivery_failed"),
        ("", "因收件人不在指定地址,未能妥投,将再次投递", "delivery_failed"),
        ("", "收件人拒收,未妥投", "delivery_failed"),
        ("投递结果反馈-妥投补录", "", "delivered"),
        ("", "已签收,他人代收:门卫张伟", "delivered"),
        ("派送中", "", "out_for_delivery"),
        ("投递邮件接收-补录", "", "out_for_delivery"),
        ("揽收", "", "picked_up"),
        ("收寄补录", "", "picked_up"),
        ("到达投递网点", "", "in_transit"),
        ("离开处理中心", "", "in_transit"),
        ("", "快件已发往【郑州中心】", "in_transit"),
        ("邮件查询", "收件人查询了邮件信息", None),
        ("", "", None),
    ],
)
def test_unknown_codes_fall_back_to_the_wording(op_name: str, op_desc: str, expected: str | None) -> None:
    assert codes.status_for("7099", op_name, op_desc) == expected


def test_name_is_read_before_the_description() -> None:
    assert codes.status_for("7099", "派送中", "签收时请出示取件验证码") == "out_for_delivery"


def test_unknown_code_is_kept_raw_on_the_event() -> None:
    item = {
        "traceNo": "1295780512499",
        "opCode": "7099",
        "opName": "退回妥投",
        "opDesc": "退回邮件已由寄件人签收",
        "opTime": "2026-12-02 11:20:00",
    }
    event = event_from_item(item)
    assert event.code == "7099"
    assert event.status == "returned"
    assert event.raw["opCode"] == "7099"


def test_failure_reason_table_holds_the_ten_codes_the_issue_lists() -> None:
    assert set(codes.FAILURE_REASONS) == {
        "101", "102", "103", "104", "113", "115", "118", "124", "127", "130"
    }
    assert codes.reason_meaning("104") is not None and "拒收" in codes.reason_meaning("104")


@pytest.mark.parametrize(
    ("op_desc", "expected"),
    [
        ("因收件人不在指定地址,未能妥投,将再次投递", "103"),
        ("未妥投,原因:104", "104"),
        ("未妥投,原因代码为(118),请联系寄件人", "118"),
        ("收件人拒收,未妥投", "104"),
        ("查无此人,未妥投", "102"),
        ("收件人电话无人接听,未妥投", "113"),
        ("地址不详,无法投递", "124"),
        ("收件人要求自取,未妥投", "115"),
    ],
)
def test_reason_code_is_read_from_the_description(op_desc: str, expected: str) -> None:
    assert codes.reason_for(op_desc) == expected


@pytest.mark.parametrize(
    "op_desc",
    ["未妥投,投递员:刘洋,电话:13903712222,新安路街道济源路8号院3号楼102室", "未妥投,原因:199", ""],
)
def test_numbers_that_are_not_reasons_are_ignored(op_desc: str) -> None:
    assert codes.reason_for(op_desc) is None


@pytest.mark.parametrize(
    ("ret_code", "retryable"),
    [("S01", True), ("S07", True), ("S00001", True), ("E9001", True), ("B01", False), ("B99", False),
     ("00000", False)],
)
def test_retryable_rule(ret_code: str, retryable: bool) -> None:
    assert codes.is_retryable(ret_code) is retryable


def test_response_codes_are_data_with_meanings() -> None:
    assert codes.RET_CODES["B05"].kind == "business"
    assert codes.ret_meaning("S02") == "bad signature"
    assert codes.ret_meaning("S99") is None
