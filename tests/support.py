"""Realistic request data and small helpers shared by the tests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from logistics.accounts import clients

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def sign_in(api: Any, token: str) -> str:
    """Sign a clerk in on the console through its form; returns the session's CSRF token (from the landing page)."""
    form = await api.get("/console/sign-in")
    resp = await api.post("/console/sign-in", data={"csrf": csrf_of(await form.text()), "token": token})
    assert resp.status == 200 and resp.url.path == "/console/today", await resp.text()
    return csrf_of(await resp.text())


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


class RawResponse:
    """An HTTP answer read off the socket: status, headers (lower-case names) and body."""

    def __init__(self, data: bytes) -> None:
        head, _, self.body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw_request(method: str, target: bytes, headers: Sequence[bytes] = (), body: bytes = b"") -> bytes:
    """A request as bytes, header lines exactly as given: no client library sends a header that is not UTF-8
    or that carries a control byte, which is what an attacker sends."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def send_raw(host: str, port: int, request: bytes) -> RawResponse:
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return RawResponse(await reader.read())  # the server closes: the request asked for it, or it refused it
    finally:
        writer.close()
