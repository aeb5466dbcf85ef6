"""Who pays EMS (``paymentMode`` in the 020003 order): 1 the sender, 2 the recipient, 4 the recipient centrally
(monthly). The order's payer is the carrier's own term; without one, the hall pays as it always has."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from carriers.base import Item, OrderRequest, Party, Payer
from carriers.ems import messages

FIXTURES = Path(__file__).parent / "fixtures" / "ems"
HALL = Party(
    name="上街区政务服务中心",
    phone="0371-68123456",
    province="河南省",
    city="郑州市",
    district="上街区",
    address="中心路132号",
    postcode="450041",
)
APPLICANT = Party(
    name="张伟", phone="13937112345", province="河南省", city="郑州市", district="上街区", address="峡窝镇马固村3组17号"
)
INTAKE = OrderRequest(
    order_no="shp_01JD90A1B2C3D4E5F6G7H8J9K0",
    kind="intake",
    sender=APPLICANT,
    receiver=HALL,
    items=(Item("营业执照申请材料"),),
    created_at=datetime(2026, 11, 26, 1, 30, tzinfo=UTC),
    pickup_start=datetime(2026, 11, 26, 6, 0, tzinfo=UTC),
    pickup_end=datetime(2026, 11, 26, 8, 0, tzinfo=UTC),
    notes="政务寄递 410106-2018-00107",
)
DELIVERY = OrderRequest(
    order_no="shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C",
    kind="delivery",
    sender=HALL,
    receiver=Party(
        name="欧阳娜娜",
        phone="13803712345",
        province="河南省",
        city="郑州市",
        district="上街区",
        address="新安路街道济源路8号院3号楼2单元501室",
    ),
    items=(Item("食品经营许可证正本"),),
    created_at=datetime(2026, 11, 26, 1, 30, tzinfo=UTC),
)


def _order(req: OrderRequest) -> dict[str, Any]:
    [order] = messages.build_order_body(req, ecommerce_user_id="sjzwfw", biz_product_no="1")
    return order


def test_an_intake_the_applicant_pays_at_pickup_is_exactly_the_fixture_order() -> None:
    expected = json.loads((FIXTURES / "order_020003_intake_applicant_pays.json").read_text(encoding="utf-8"))
    assert (
        messages.build_order_body(replace(INTAKE, payer="sender"), ecommerce_user_id="sjzwfw", biz_product_no="1")
        == expected
    )


def test_the_fixture_order_differs_from_a_monthly_intake_only_in_who_pays() -> None:
    [expected] = json.loads((FIXTURES / "order_020003_intake_applicant_pays.json").read_text(encoding="utf-8"))
    assert _order(replace(INTAKE, payer="recipient_monthly")) == {**expected, "paymentMode": "4"}


@pytest.mark.parametrize(("payer", "code"), [("sender", "1"), ("recipient", "2"), ("recipient_monthly", "4")])
def test_each_payer_is_its_ems_payment_mode(payer: Payer, code: str) -> None:
    assert _order(replace(INTAKE, payer=payer))["paymentMode"] == code
    assert _order(replace(DELIVERY, payer=payer))["paymentMode"] == code


def test_without_a_payer_the_hall_pays_as_before() -> None:
    assert _order(INTAKE)["paymentMode"] == "4"  # the hall receives the papers and pays centrally
    assert _order(DELIVERY)["paymentMode"] == "1"  # the hall sends the result on its own account


def test_the_payer_does_not_move_the_payment_mode_within_the_order() -> None:
    # The envelope is computed over the exact JSON text: a field's place must not depend on who pays.
    assert list(_order(replace(DELIVERY, payer="sender"))) == list(_order(DELIVERY))
