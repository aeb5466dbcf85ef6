"""Helpers for the simulator tests: realistic Zhengzhou orders, a harness around a running simulator, and a
push receiver standing in for our /carriers/ems/push endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientTimeout, web
from aiohttp.test_utils import TestClient

from carriers.ems.envelope import open_
from carriers.simulator.server import Simulator
from carriers.simulator.wire import read_response, request_form

SENDER_NO = "1100012345678"
AUTHORIZATION = "a7Rk2PqWz9Lm4Xc1"
SIGN_KEY = "TvaBgrhE46sft3nZlfe7xw=="
OTHER_KEY = "WjNoNmhXWE12SFZJdk0zWQ=="
API = "/amp-prod-api/f/amp/api/open"

HALL = {
    "name": "上街区政务服务中心",
    "mobile": "",
    "phone": "0371-68123456-801",
    "postCode": "450041",
    "prov": "河南省",
    "city": "郑州市",
    "county": "上街区",
    "address": "济源路与新安路交叉口上街区政务服务中心一楼8号窗口",
}

APPLICANT = {
    "name": "欧阳娜娜",
    "mobile": "13803712345",
    "phone": "",
    "prov": "河南省",
    "city": "郑州市",
    "county": "上街区",
    "address": "新安路街道济源路8号院3号楼2单元501室",
}


def make_order(order_no: str = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C", **changes: Any) -> dict[str, Any]:
    """A delivery order (licence from the hall to the applicant), as the adapter would build it."""
    order: dict[str, Any] = {
        "createdTime": "2026-11-26 10:05:00",
        "ecommerceUserId": "zz-shangjie-hall",
        "logisticsOrderNo": order_no,
        "contentsAttribute": "1",
        "bizProductNo": "10",
        "weight": 200,
        "pickupType": "1",
        "pickupPreBeginTime": "2026-11-26 14:00:00",
        "pickupPreEndTime": "2026-11-26 18:00:00",
        "deliverType": "2",
        "paymentMode": "4",
        "pickupNotes": "上街区政务服务中心一楼8号窗口",
        "receiverSafetyCode": "4827",
        "sender": copy.deepcopy(HALL),
        "receiver": copy.deepcopy(APPLICANT),
        "cargos": [{"cargoName": "营业执照正本", "cargoQuantity": 1}],
    }
    order.update(changes)
    return order


@dataclass
class Harness:
    client: TestClient
    sim: Simulator

    async def call(
        self,
        api_code: str,
        body: Any,
        *,
        sign_key: str = SIGN_KEY,
        path: str = API,
        timeout: float | None = None,
        **form: str,
    ) -> tuple[str, str, Any]:
        fields = request_form(api_code, body, sender_no=SENDER_NO, authorization=AUTHORIZATION, sign_key=sign_key)
        fields.update(form)
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = ClientTimeout(total=timeout)
        resp = await self.client.post(path, data=fields, **kwargs)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        return read_response(await resp.json())

    async def create(self, order: dict[str, Any] | None = None) -> dict[str, Any]:
        code, msg, body = await self.call("020003", [order or make_order()])
        assert code == "00000", msg
        return body

    async def admin(self, method: str, path: str, payload: Any = None) -> Any:
        resp = await self.client.request(method, path, json=payload)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def tick(self, steps: int = 1, waybill: str | None = None) -> list[dict[str, str]]:
        payload: dict[str, Any] = {"steps": steps}
        if waybill:
            payload["waybillNo"] = waybill
        return (await self.admin("POST", "/admin/tick", payload))["events"]

    async def faults(self, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.admin("PUT", "/admin/faults", patch)

    async def orders(self) -> dict[str, Any]:
        return await self.admin("GET", "/admin/orders")


@dataclass
class Push:
    envelope: dict[str, Any]
    event: dict[str, Any]


@dataclass
class Receiver:
    """Our side of 040002: decrypts pushes, answers 00000 unless told to fail."""

    sign_key: str = SIGN_KEY
    fail_next: int = 0  # answer this many pushes with S00001
    hang_next: int = 0  # leave this many pushes unanswered for hang_seconds
    hang_seconds: float = 5.0
    pushes: asyncio.Queue[Push] = field(default_factory=asyncio.Queue)
    refused: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        envelope = await request.json()
        if self.hang_next > 0:
            self.hang_next -= 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.hang_seconds)
        reply = {"serialNo": envelope["serialNo"], "codeMessage": "", "senderNo": SENDER_NO}
        if self.fail_next > 0:
            self.fail_next -= 1
            await self.refused.put(envelope)
            return web.json_response({**reply, "code": "S00001", "codeMessage": "处理失败"})
        # Pushes arrive without the key suffix; strip_key=False proves nothing was appended.
        event = json.loads(open_(envelope["logitcsInterface"], self.sign_key, strip_key=False))
        await self.pushes.put(Push(envelope, event))
        return web.json_response({**reply, "code": "00000"})

    async def next(self, timeout: float = 3.0) -> Push:
        return await asyncio.wait_for(self.pushes.get(), timeout)

    async def take(self, n: int, timeout: float = 3.0) -> list[Push]:
        return [await self.next(timeout) for _ in range(n)]
