"""Realistic request data and small helpers shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from logistics import clients


def auth(creds: clients.Credentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {creds.api_key}"}


HALL = {
    "name": "上街区政务服务中心",
    "phone": "0371-68123456",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "中心路132号",
    "postcode": "450041",
}
APPLICANT = {
    "name": "欧阳娜娜",
    "phone": "13803712345",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "新安路街道济源路8号院3号楼2单元501室",
}


def delivery_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "delivery",
        "cases": [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}],
        "department": "上街区市场监督管理局",
        "window": "综合受理3号窗口",
        "sender": dict(HALL),
        "recipient": dict(APPLICANT),
        "contents": [{"name": "食品经营许可证正本", "count": 1}],
        "verification_code": True,
        "metadata": {"approval_system": "sj-spxt"},
    }
    body.update(overrides)
    return body


def intake_body(**overrides: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body: dict[str, Any] = {
        "kind": "intake",
        "cases": [{"case_no": "410106-2018-00107", "item_name": "个体工商户设立登记"}],
        "department": "上街区市场监督管理局",
        "window": "综合受理5号窗口",
        "sender": {**APPLICANT, "name": "张伟", "phone": "13937112345", "address": "峡窝镇马固村3组17号"},
        "recipient": dict(HALL),
        "contents": [{"name": "营业执照申请材料", "count": 1}],
        "pickup_window": {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
    }
    body.update(overrides)
    return body


async def eventually(check: Any, *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Await an outcome produced by another process or task: re-check until it holds or the deadline passes."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


def left_hub_event(waybill: str, op_time: str = "2026-11-26 14:05:00") -> dict[str, str]:
    """An EMS tracking event (the object a 040002 push carries): the parcel left the district's sorting centre."""
    return {
        "traceNo": waybill,
        "waybillNo": waybill,
        "opTime": op_time,
        "opCode": "305",
        "opName": "离开处理中心",
        "opDesc": "快件已离开【郑州市上街区揽投部】，正发往【郑州中心】",
        "opOrgProvName": "河南省",
        "opOrgCity": "郑州市",
        "opOrgCode": "45004100",
        "opOrgName": "郑州市上街区揽投部",
        "operatorNo": "",
        "operatorName": "",
    }
