"""EmsCarrier against a small real HTTP server that speaks the EMS form and envelope."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from carriers import registry
from carriers.base import (
    FinalCarrierError,
    Item,
    OrderRequest,
    Party,
    RetryableCarrierError,
)
from carriers.ems import EmsCarrier, EmsConfig, messages
from carriers.ems.envelope import open_

FIXTURES = Path(__file__).parent / "fixtures" / "ems"
SIGN_KEY = "TvaBgrhE46sft3nZlfe7xw=="
SENDER_NO = "1100012345678"
AUTHORIZATION = "AUTHsandbox01"
ORDER_NO = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"
WAYBILL = "1295780512499"
HANG_SECONDS = 5.0
CLIENT_TIMEOUT = 0.3


@dataclass
class FakeEms:
    """Decrypts every request like EMS would and answers according to ``mode``."""

    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        body = json.loads(open_(str(form["logitcsInterface"]), SIGN_KEY, strip_key=True))
        self.requests.append(
            {"path": request.path, "content_type": request.headers.get("Content-Type", ""),
             "form": {k: str(v) for k, v in form.items()}, "body": body}
        )
        if self.mode == "hang":
            # Bounded so a broken client test cannot hang the suite; released at teardown.
            try:
                await asyncio.wait_for(self.release.wait(), HANG_SECONDS)
            except TimeoutError:
                pass
            return web.json_response({"retCode": "00000", "retBody": ""})
        if self.mode == "503":
            return web.Response(status=503, text="<html>503 Service Temporarily Unavailable</html>")
        if self.mode == "429":
            return web.Response(status=429, text="Too Many Requests")
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if self.mode == "b01":
            return web.Response(text=(FIXTURES / "order_020003_b01.json").read_text(encoding="utf-8"))
        if self.mode == "s07":
            return web.Response(text=(FIXTURES / "order_020003_s07.json").read_text(encoding="utf-8"))
        return web.Response(text=self._success(str(form["apiCode"])), content_type="application/json")

    @staticmethod
    def _success(api_code: str) -> str:
        if api_code == messages.API_CREATE_ORDER:
            return (FIXTURES / "order_020003_success.json").read_text(encoding="utf-8")
        if api_code == messages.API_TRACK:
            return (FIXTURES / "track_040001.json").read_text(encoding="utf-8")
        return json.dumps({"serialNo": "1", "retCode": "00000", "retMsg": "成功", "retBody": "", "success": True})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeEms, str]]:
    ems = FakeEms()
    app = web.Application()
    app.router.add_post(messages.PROD_PATH, ems.handle)
    app.router.add_post(messages.SANDBOX_PATH, ems.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield ems, f"http://127.0.0.1:{server.port}"
    ems.release.set()
    await server.close()


def _config(base_url: str, *, sandbox: bool = True) -> EmsConfig:
    return EmsConfig(
        base_url=base_url,
        sender_no=SENDER_NO,
        authorization=AUTHORIZATION,
        sign_key=SIGN_KEY,
        sandbox=sandbox,
        ecommerce_user_id="sjzwfw",
        connect_timeout=CLIENT_TIMEOUT,
        total_timeout=CLIENT_TIMEOUT,
    )


@pytest.fixture
async def carrier(fake: tuple[FakeEms, str]) -> AsyncIterator[EmsCarrier]:
    ems = EmsCarrier(_config(fake[1]), clock=lambda: datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    yield ems
    await ems.close()


def _request() -> OrderRequest:
    return OrderRequest(
        order_no=ORDER_NO,
        kind="delivery",
        sender=Party("上街区政务服务中心", "0371-68123456", "河南省", "郑州市", "上街区", "中心路132号", "450041"),
        receiver=Party("欧阳娜娜", "13803712345", "河南省", "郑州市", "上街区", "新安路街道济源路8号院3号楼2单元501室"),
        items=(Item("食品经营许可证正本"),),
        created_at=datetime(2026, 11, 26, 1, 30, tzinfo=UTC),
        safety_code="K7Q2M9",
    )


async def test_create_order_returns_the_waybill(carrier: EmsCarrier) -> None:
    result = await carrier.create_order(_request())
    assert result.waybill_no == WAYBILL
    assert result.order_no == ORDER_NO
    assert result.destination_name == "郑州 上街"


async def test_create_order_sends_the_sealed_order(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    await carrier.create_order(_request())
    (seen,) = fake[0].requests
    assert seen["form"]["apiCode"] == "020003"
    assert seen["form"]["senderNo"] == SENDER_NO
    assert seen["form"]["authorization"] == AUTHORIZATION
    assert seen["form"]["timeStamp"] == "2026-11-26 10:00:00"
    assert seen["body"][0]["logisticsOrderNo"] == ORDER_NO
    assert seen["body"][0]["receiver"]["name"] == "欧阳娜娜"


async def test_requests_are_form_posts_to_the_sandbox_path(
    carrier: EmsCarrier, fake: tuple[FakeEms, str]
) -> None:
    await carrier.track(WAYBILL)
    (seen,) = fake[0].requests
    assert seen["path"] == "/amp-prod-api/f/amp/api/test"
    assert seen["content_type"].startswith("application/x-www-form-urlencoded")


async def test_production_config_uses_the_open_path(fake: tuple[FakeEms, str]) -> None:
    ems = EmsCarrier(_config(fake[1], sandbox=False))
    try:
        await ems.track(WAYBILL)
    finally:
        await ems.close()
    assert fake[0].requests[0]["path"] == "/amp-prod-api/f/amp/api/open"


async def test_track_returns_the_history(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    events = await carrier.track(WAYBILL)
    assert fake[0].requests[0]["body"] == {"waybillNo": WAYBILL, "direction": "0"}
    assert len(events) == 9
    assert events[-1].status == "delivered"


async def test_cancel_sends_order_and_waybill(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    assert await carrier.cancel_order(ORDER_NO, WAYBILL, "申请人改为窗口领取") is None
    body = fake[0].requests[0]["body"]
    assert body == {"logisticsOrderNo": ORDER_NO, "waybillNo": WAYBILL, "cancelReason": "申请人改为窗口领取"}


async def test_b_code_is_final(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    fake[0].mode = "b01"
    with pytest.raises(FinalCarrierError) as caught:
        await carrier.create_order(_request())
    assert caught.value.code == "B01"


async def test_s_code_is_retryable(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    fake[0].mode = "s07"
    with pytest.raises(RetryableCarrierError) as caught:
        await carrier.create_order(_request())
    assert caught.value.code == "S07"


async def test_http_503_is_retryable(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    fake[0].mode = "503"
    with pytest.raises(RetryableCarrierError) as caught:
        await carrier.create_order(_request())
    assert caught.value.code == "HTTP503"


async def test_http_429_is_retryable(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    fake[0].mode = "429"
    with pytest.raises(RetryableCarrierError) as caught:
        await carrier.track(WAYBILL)
    assert caught.value.code == "HTTP429"


async def test_hanging_server_times_out_as_retryable(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    fake[0].mode = "hang"
    started = time.monotonic()
    with pytest.raises(RetryableCarrierError) as caught:
        await carrier.create_order(_request())
    assert caught.value.code == "TIMEOUT"
    assert time.monotonic() - started < HANG_SECONDS / 2


async def test_connection_reset_is_retryable(carrier: EmsCarrier, fake: tuple[FakeEms, str]) -> None:
    fake[0].mode = "reset"
    with pytest.raises(RetryableCarrierError) as caught:
        await carrier.track(WAYBILL)
    assert caught.value.code == "NET"


async def test_connection_refused_is_retryable() -> None:
    ems = EmsCarrier(_config(f"http://127.0.0.1:{unused_port()}"))
    try:
        with pytest.raises(RetryableCarrierError) as caught:
            await ems.track(WAYBILL)
    finally:
        await ems.close()
    assert caught.value.code == "NET"


async def test_proxy_environment_is_ignored(
    carrier: EmsCarrier, fake: tuple[FakeEms, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_port()}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{unused_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert len(await carrier.track(WAYBILL)) == 9


async def test_close_closes_its_own_session(fake: tuple[FakeEms, str]) -> None:
    ems = EmsCarrier(_config(fake[1]))
    await ems.track(WAYBILL)
    session = ems._session
    await ems.close()
    assert session is not None and session.closed


async def test_close_leaves_a_shared_session_open(fake: tuple[FakeEms, str]) -> None:
    async with aiohttp.ClientSession() as shared:
        ems = EmsCarrier(_config(fake[1]), session=shared)
        await ems.track(WAYBILL)
        await ems.close()
        assert not shared.closed


async def test_parse_push_uses_the_configured_key(carrier: EmsCarrier) -> None:
    result = carrier.parse_push((FIXTURES / "push_040002.json").read_bytes(), "application/json")
    assert result.events[0].code == "704"
    assert json.loads(result.reply)["senderNo"] == SENDER_NO


async def test_registry_creates_the_carrier_from_options(fake: tuple[FakeEms, str]) -> None:
    ems = registry.create(
        "ems",
        base_url=fake[1],
        sender_no=SENDER_NO,
        authorization=AUTHORIZATION,
        sign_key=SIGN_KEY,
        sandbox=True,
        ecommerce_user_id="sjzwfw",
        biz_product_no="11",
    )
    try:
        assert isinstance(ems, EmsCarrier)
        assert ems.name == "ems"
        await ems.create_order(_request())
    finally:
        await ems.close()
    assert fake[0].requests[0]["body"][0]["bizProductNo"] == "11"


def test_config_rejects_a_key_that_is_not_16_bytes() -> None:
    with pytest.raises(ValueError):
        EmsConfig("https://api.ems.com.cn", SENDER_NO, AUTHORIZATION, "c2hvcnQ=", False, "sjzwfw")


def test_config_repr_hides_secrets() -> None:
    text = repr(_config("https://api.ems.com.cn"))
    assert SIGN_KEY not in text
    assert AUTHORIZATION not in text
