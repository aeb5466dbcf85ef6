"""Helpers for the returns tests: shipments made in the database and moved by EMS events applied the way the
push handler applies them (carriers.ems parsing → logistics.jobs.carrier.apply_carrier_events).

(A module name of its own: test folders here are not packages.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from carriers.ems.messages import BEIJING, event_from_item
from logistics.carrier import event_payload
from logistics.domain import ids
from logistics.domain.tables import shipment_cases, shipment_events, shipments
from logistics.jobs.carrier import apply_carrier_events
from logistics.storage.db import Database

from support import HALL

RECIPIENT = {
    "name": "欧阳娜娜",
    "phone": "13803712345",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "新安路街道济源路8号院3号楼2单元501室",
    "postcode": "450041",
}
CORRECTED = {
    "name": "欧阳娜娜",
    "phone": "13803712345",
    "province": "河南省",
    "city": "郑州市",
    "district": "中原区",
    "address": "桐柏路街道伊河路17号院2号楼1单元302室",
    "postcode": "450007",
}
START = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


async def new_shipment(
    db: Database, client_id: str, *, kind: str = "delivery", status: str = "ordered"
) -> dict[str, str]:
    """A shipment already ordered at EMS, as the order worker leaves it; returns its id and waybill."""
    now = datetime.now(UTC)
    sid, waybill = ids.shipment_id(), f"11512638{ids.verification_code()[:5]}"
    intake = kind == "intake"
    async with db.write() as conn:
        await conn.execute(
            insert(shipments).values(
                id=sid,
                client_id=client_id,
                kind=kind,
                status=status,
                department="上街区市场监督管理局",
                window="综合受理3号窗口",
                sender=RECIPIENT if intake else HALL,
                recipient=HALL if intake else RECIPIENT,
                contents=[{"name": "食品经营许可证申请材料" if intake else "食品经营许可证正本", "count": 1}],
                extra={"approval_system": "sj-spxt"},
                pickup_start=now + timedelta(days=1) if intake else None,
                pickup_end=now + timedelta(days=1, hours=4) if intake else None,
                verification_code=None if intake else "402715",
                tracking_code=ids.tracking_code(),
                carrier="ems",
                waybill_no=waybill,
                last_sequence=1,
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(shipment_cases).values(
                shipment_id=sid, position=0, case_no="410106-2018-00095", item_name="食品经营许可证核发"
            )
        )
        await conn.execute(
            insert(shipment_events).values(
                shipment_id=sid, sequence=1, status=status, occurred_at=now, recorded_at=now, source="system"
            )
        )
    return {"id": sid, "waybill": waybill}


def ems_item(waybill: str, op_code: str, op_name: str, op_desc: str, minutes: int, **fields: str) -> dict[str, Any]:
    """An EMS event object as a 040002 push carries it, ``minutes`` after START."""
    when = (START + timedelta(minutes=minutes)).astimezone(BEIJING)
    return {
        "waybillNo": waybill,
        "opTime": when.strftime("%Y-%m-%d %H:%M:%S"),
        "opCode": op_code,
        "opName": op_name,
        "opDesc": op_desc,
        "opOrgProvName": "河南省",
        "opOrgCity": "郑州市",
        "opOrgName": "郑州市上街区揽投部",
        **fields,
    }


async def push(db: Database, *items: dict[str, Any]) -> None:
    """Apply EMS events as the push handler does, one transaction each."""
    for item in items:
        async with db.write() as conn:
            await apply_carrier_events(conn, [event_payload(event_from_item(item))], source="carrier_push")


def refused_and_returned(waybill: str) -> list[dict[str, Any]]:
    """A refusal at the door (reason in EMS's fields), the way back, and the parcel back with the hall."""
    return [
        ems_item(waybill, "203", "收寄", "【郑州市上街区揽投部】已收寄,揽投员:刘洋", 0),
        ems_item(waybill, "702", "投递邮件接收-下段", "【郑州市中原区桐柏路揽投部】正在投递,投递员:王强", 300),
        ems_item(
            waybill, "705", "投递结果反馈-未妥投", "未妥投,原因:收件人拒收", 330, reasonCode="104", reasonDesc="拒收"
        ),
        ems_item(waybill, "708", "退回", "邮件退回中,原因:收件人拒收,已离开【郑州市邮区中心】", 600),
        ems_item(waybill, "711", "退回妥投", "退回邮件已妥投,寄件人签收", 1500),
    ]
