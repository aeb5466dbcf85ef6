"""Shipment rows → LabelData: which side is the hall, what the label links to, what it never carries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from logistics.label_store import LabelNotReady, label_data

from support import APPLICANT, HALL

PRINTED = datetime(2026, 5, 9, 1, 30, tzinfo=UTC)


def _row(kind: str, **changes: Any) -> dict[str, Any]:
    applicant = {**APPLICANT, "name": "张伟", "phone": "13937112345"}
    row: dict[str, Any] = {
        "id": "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C",
        "kind": kind,
        "status": "ordered",
        "sender": applicant if kind == "intake" else HALL,
        "recipient": HALL if kind == "intake" else applicant,
        "contents": [{"name": "营业执照申请材料", "count": 2}],
        "department": "上街区市场监督管理局",
        "window": "综合受理5号窗口",
        "verification_code": "583920",
        "tracking_code": "K7Q2M4X7V3K9T",
        "carrier": "ems",
        "waybill_no": "1295780512499",
        "route_code": "451-A07",
        "destination_code": "450041",
        "destination_name": "郑州上街",
    }
    row.update(changes)
    return row


CASES = [{"case_no": "410106-2018-00107", "item_name": "个体工商户设立登记"}]


def test_an_intake_label_treats_the_hall_as_the_organisation_recipient() -> None:
    label = label_data(_row("intake"), CASES, "https://jd.sj.gov.cn", PRINTED)
    assert (label.sender.is_organisation, label.recipient.is_organisation) == (False, True)
    assert label.recipient.name == "上街区政务服务中心"


def test_a_delivery_label_treats_the_hall_as_the_organisation_sender() -> None:
    label = label_data(_row("delivery"), CASES, "https://jd.sj.gov.cn", PRINTED)
    assert (label.sender.is_organisation, label.recipient.is_organisation) == (True, False)


def test_the_label_links_to_the_public_tracking_page_and_names_ems() -> None:
    label = label_data(_row("delivery"), CASES, "https://jd.sj.gov.cn", PRINTED)
    assert label.tracking_url == "https://jd.sj.gov.cn/t/K7Q2M4X7V3K9T"
    assert (label.carrier_name, label.product_name) == ("EMS", "特快专递")
    assert (label.destination_name, label.destination_code, label.route_code) == ("郑州上街", "450041", "451-A07")


def test_the_print_time_is_beijing_time() -> None:
    label = label_data(_row("delivery"), CASES, "https://jd.sj.gov.cn", PRINTED)
    assert label.printed_at.strftime("%Y-%m-%d %H:%M") == "2026-05-09 09:30"


def test_no_label_field_carries_the_verification_code() -> None:
    label = label_data(_row("delivery"), CASES, "https://jd.sj.gov.cn", PRINTED)
    assert "583920" not in repr(dataclasses.asdict(label))


def test_a_shipment_without_a_waybill_has_no_label() -> None:
    with pytest.raises(LabelNotReady):
        label_data(_row("delivery", waybill_no=None), CASES, "https://jd.sj.gov.cn", PRINTED)
