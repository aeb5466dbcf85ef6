"""Who pays EMS, from the halls file to the order the simulator received (``paymentMode``: 1 the sender pays,
4 the recipient pays centrally, i.e. the hall's monthly settlement)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline_support import StackFactory

from support import HALL, delivery_body, intake_body

MARKET = "上街区市场监督管理局"  # its halls file entry: sender_pays
CIVIL = "上街区民政局"  # no payment_mode in its entry: monthly


def halls_file(tmp_path: Path) -> Path:
    path = tmp_path / "halls.json"
    halls = {MARKET: {**HALL, "payment_mode": "sender_pays"}, CIVIL: {**HALL, "name": "上街区民政局婚姻登记处"}}
    path.write_text(json.dumps(halls, ensure_ascii=False), encoding="utf-8")
    return path


async def test_the_departments_payment_mode_is_the_payment_mode_ems_receives(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack(halls_file=halls_file(tmp_path))
    applicant_pays = await stack.create(intake_body(department=MARKET, recipient=None))
    hall_pays_monthly = await stack.create(intake_body(department=CIVIL, recipient=None))
    result_sent = await stack.create(delivery_body(department=CIVIL))
    asked_sender_pays = await stack.create(intake_body(department=CIVIL, recipient=None, payment_mode="sender_pays"))
    ids = [applicant_pays, hall_pays_monthly, result_sent, asked_sender_pays]
    await stack.wait_status(ids, "ordered", timeout=20)

    received = {}
    for sid in ids:
        shipment = await stack.shipment(sid)
        received[sid] = (shipment["payment_mode"], (await stack.parcel(shipment["waybill_no"]))["order"]["paymentMode"])
    assert received == {
        applicant_pays: ("sender_pays", "1"),  # the applicant pays at the door pickup
        hall_pays_monthly: ("monthly", "4"),  # the hall, the recipient, pays on its monthly settlement
        result_sent: ("monthly", "1"),  # the hall sends the result on its own account
        asked_sender_pays: ("sender_pays", "1"),  # the request's choice wins over the department's default
    }
