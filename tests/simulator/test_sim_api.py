"""The simulated partner API over real HTTP: orders, validation, cancel, tracking, the simple apiCodes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sim_fixtures import API, OTHER_KEY, SIGN_KEY, Harness, make_order

from carriers.ems.envelope import seal
from carriers.simulator import SimConfig, serve
from carriers.simulator.wire import parse_time

ORDER_NO = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"


async def test_order_gets_a_13_digit_waybill_and_routing(sim: Harness) -> None:
    body = await sim.create()
    assert body["logisticsOrderNo"] == ORDER_NO
    assert re.fullmatch(r"1\d{12}", body["waybillNo"])
    assert body["markDestinationName"] == "郑州上街 450"
    assert body["packageCodeName"] == "郑州中心"
    assert body["packageCode"].startswith("450")
    assert body["routeCode"].startswith("450-")
    assert body["markDestinationCode"].startswith("450")


async def test_same_order_number_gives_same_waybill_and_one_order(sim: Harness) -> None:
    first = await sim.create()
    again = await sim.create()
    other = await sim.create(make_order("shp_01JD8Z7A1B2C3D4E5F6G7H8J9K"))
    assert again["waybillNo"] == first["waybillNo"]
    assert other["waybillNo"] != first["waybillNo"]
    stats = await sim.orders()
    assert stats["orders"] == {ORDER_NO: 1, "shp_01JD8Z7A1B2C3D4E5F6G7H8J9K": 1}
    assert stats["create_calls"][ORDER_NO] == 2
    assert stats["calls"]["020003"] == 3
    assert stats["waybills"][ORDER_NO] == first["waybillNo"]


async def test_the_sandbox_path_answers_the_same_way(sim: Harness) -> None:
    code, _, body = await sim.call("020003", [make_order()], path="/amp-prod-api/f/amp/api/test")
    assert code == "00000"
    assert len(body["waybillNo"]) == 13


async def test_same_seed_assigns_same_waybills(make_sim: Callable[..., Awaitable[Harness]]) -> None:
    a, b = await make_sim(seed=7), await make_sim(seed=7)
    assert (await a.create())["waybillNo"] == (await b.create())["waybillNo"]


async def test_missing_field_is_b01_naming_it(sim: Harness) -> None:
    order = make_order()
    del order["receiver"]["mobile"]
    del order["receiver"]["phone"]
    code, msg, _ = await sim.call("020003", [order])
    assert code == "B01"
    assert "receiver.mobile" in msg

    order = make_order()
    del order["logisticsOrderNo"]
    code, msg, _ = await sim.call("020003", [order])
    assert (code, "logisticsOrderNo" in msg) == ("B01", True)

    order = make_order()
    del order["pickupPreEndTime"]
    code, msg, _ = await sim.call("020003", [order])
    assert (code, "pickupPreEndTime" in msg) == ("B01", True)
    assert (await sim.orders())["orders"] == {}


async def test_missing_form_field_is_b01(sim: Harness) -> None:
    code, msg, _ = await sim.call("020003", [make_order()], apiCode="")
    assert code == "B01"
    assert "apiCode" in msg


async def test_malformed_fields_are_b02(sim: Harness) -> None:
    order = make_order()
    order["receiver"]["mobile"] = "1380371234"
    code, msg, _ = await sim.call("020003", [order])
    assert (code, "receiver.mobile" in msg) == ("B02", True)

    order = make_order(pickupPreBeginTime="2026-11-26 18:00:00", pickupPreEndTime="2026-11-26 18:00:00")
    code, msg, _ = await sim.call("020003", [order])
    assert (code, "pickupPreEndTime" in msg) == ("B02", True)

    # A drop-off order has no collection window to check.
    order = make_order(pickupType="0", pickupPreBeginTime="", pickupPreEndTime="")
    assert (await sim.call("020003", [order]))[0] == "00000"

    code, _, _ = await sim.call("020003", make_order())  # an object, not the required array
    assert code == "B02"
    code, _, _ = await sim.call("020003", [make_order()], timeStamp="2026/11/26 10:00")
    assert code == "B02"


async def test_province_outside_service_range_is_a_b_code(
    sim: Harness, make_sim: Callable[..., Awaitable[Harness]]
) -> None:
    order = make_order()
    order["receiver"].update(prov="香港特别行政区", city="香港", county="九龙城区", mobile="13803712345")
    code, msg, _ = await sim.call("020003", [order])
    assert code == "B06"
    assert "receiver.prov" in msg

    henan_only = await make_sim(service_provinces=frozenset({"河南"}))
    order = make_order()
    order["receiver"].update(prov="北京市", city="北京市", county="朝阳区")
    assert (await henan_only.call("020003", [order]))[0] == "B06"
    assert (await henan_only.call("020003", [make_order()]))[0] == "00000"


async def test_wrong_key_and_wrong_credentials_are_s02(sim: Harness) -> None:
    code, _, _ = await sim.call("020003", [make_order()], sign_key=OTHER_KEY)
    assert code == "S02"
    code, _, _ = await sim.call("020003", [make_order()], authorization="wrong")
    assert code == "S02"
    code, _, _ = await sim.call("020003", [make_order()], senderNo="1100099999999")
    assert code == "S02"
    # Sealed without the signKey suffix, as a push would be: the real platform rejects the signature.
    unsigned = seal('[{"logisticsOrderNo":"x"}]', SIGN_KEY, append_key=False)
    code, _, _ = await sim.call("020003", [], logitcsInterface=unsigned)
    assert code == "S02"
    code, _, _ = await sim.call("020003", [], logitcsInterface="|$4|bm90IGNpcGhlcnRleHQ=")
    assert code == "S02"
    code, _, _ = await sim.call("020003", [], logitcsInterface=seal("{not json", SIGN_KEY))
    assert code == "S01"
    assert (await sim.orders())["orders"] == {}


async def test_unknown_api_code_is_b02(sim: Harness) -> None:
    code, msg, _ = await sim.call("999999", {})
    assert code == "B02"
    assert "999999" in msg


async def test_error_envelope_shape(sim: Harness) -> None:
    resp = await sim.client.post(API, data={"apiCode": "020003"})
    payload = await resp.json()
    assert set(payload) == {"serialNo", "retCode", "retMsg", "retBody", "success"}
    assert payload["success"] is False
    assert payload["retCode"] == "B01"


async def test_cancel_before_pickup_stops_the_parcel(sim: Harness) -> None:
    body = await sim.create()
    code, _, answer = await sim.call(
        "020006", {"logisticsOrderNo": ORDER_NO, "waybillNo": body["waybillNo"], "cancelReason": "申请人改为窗口自取"}
    )
    assert code == "00000"
    assert answer["waybillNo"] == body["waybillNo"]
    # Cancelling again is not an error: a retried cancel must be safe.
    assert (await sim.call("020006", {"logisticsOrderNo": ORDER_NO, "cancelReason": "重试"}))[0] == "00000"
    assert await sim.tick(3) == []
    parcel = await sim.admin("GET", f"/admin/parcels/{body['waybillNo']}")
    assert parcel["state"] == "cancelled"
    assert parcel["events"] == []


async def test_cancel_after_pickup_is_refused(sim: Harness) -> None:
    body = await sim.create()
    events = await sim.tick(1)
    assert [e["opCode"] for e in events] == ["203"]
    code, msg, _ = await sim.call("020006", {"waybillNo": body["waybillNo"], "cancelReason": "不需要了"})
    assert code == "B07"
    assert "收寄" in msg
    assert (await sim.call("020006", {"waybillNo": "1999999999999", "cancelReason": "x"}))[0] == "B03"


async def test_tick_reveals_events_that_tracking_returns(sim: Harness) -> None:
    body = await sim.create()
    waybill = body["waybillNo"]
    code, _, track = await sim.call("040001", {"waybillNo": waybill, "direction": "0"})
    assert (code, track["responseItems"]) == ("00000", [])

    await sim.tick(3)
    code, _, track = await sim.call("040001", {"waybillNo": waybill, "direction": "0"})
    items: list[dict[str, Any]] = track["responseItems"]
    assert [i["opCode"] for i in items] == ["203", "305", "954"]
    first = items[0]
    assert first["traceNo"] == waybill
    assert first["opName"] == "收寄"
    assert first["opOrgName"] == "郑州市上街区揽投部"
    assert first["opOrgCity"] == "郑州市"
    assert first["opOrgProvName"] == "河南省"
    assert first["opDesc"].startswith("【郑州市上街区揽投部】已收寄")
    assert items[2]["opOrgName"] == "郑州中心"

    await sim.tick(20)
    _, _, track = await sim.call("040001", {"waybillNo": waybill})
    codes = [i["opCode"] for i in track["responseItems"]]
    assert codes[-1] == "704"
    assert codes[:6] == ["203", "305", "954", "989", "306", "702"]
    times = [parse_time(i["opTime"]) for i in track["responseItems"]]
    assert times == sorted(times) and len(set(times)) == len(times)
    parcel = await sim.admin("GET", f"/admin/parcels/{waybill}")
    assert parcel["state"] == "delivered"
    assert parcel["remaining"] == []
    # The order as received, so a test of the real adapter can check what it sent.
    assert parcel["order"]["receiverSafetyCode"] == "4827"
    assert parcel["order"]["receiver"]["name"] == "欧阳娜娜"
    # A huge step count returns at once when every parcel is delivered.
    assert await sim.tick(1_000_000) == []


async def test_tick_one_waybill_only(sim: Harness) -> None:
    a = await sim.create()
    b = await sim.create(make_order("shp_01JD8ZA0000000000000000001"))
    events = await sim.tick(2, waybill=b["waybillNo"])
    assert {e["waybillNo"] for e in events} == {b["waybillNo"]}
    assert (await sim.admin("GET", f"/admin/parcels/{a['waybillNo']}"))["state"] == "ordered"
    resp = await sim.client.post("/admin/tick", json={"steps": 1, "waybillNo": "1000000000000"})
    assert resp.status == 404


async def test_unknown_waybill_has_no_trace(sim: Harness) -> None:
    code, _, track = await sim.call("040001", {"waybillNo": "1295780512499", "direction": "0"})
    assert (code, track) == ("00000", {"responseItems": []})
    assert (await sim.call("040001", {"direction": "0"}))[0] == "B01"


async def test_coverage_and_address_split(sim: Harness) -> None:
    query = {
        "address": "济源路8号院",
        "prov": "河南省",
        "city": "郑州市",
        "county": "上街区",
        "bizProductNo": "10",
        "type": "2",
        "senderNo": "1100012345678",
    }
    code, _, body = await sim.call("030005", query)
    assert (code, body["status"]) == ("00000", "0")
    _, _, body = await sim.call("030005", {**query, "prov": "台湾省", "city": "台北市", "county": "大安区"})
    assert body["status"] == "1"

    code, _, parts = await sim.call(
        "060001", [{"wholeAddress": "河南省郑州市上街区新安路街道济源路8号院3号楼2单元501室"}]
    )
    assert code == "00000"
    assert parts[0]["prov"] == "河南省"
    assert parts[0]["city"] == "郑州市"
    assert parts[0]["county"] == "上街区"
    assert parts[0]["address"] == "新安路街道济源路8号院3号楼2单元501室"


async def test_reset_forgets_everything(sim: Harness) -> None:
    first = await sim.create()
    await sim.faults({"errors": {"s_code": 0.5}})
    await sim.admin("POST", "/admin/reset")
    stats = await sim.orders()
    assert stats["orders"] == {} and stats["calls"] == {}
    assert (await sim.admin("GET", "/admin/faults"))["errors"]["s_code"] == 0.0
    # Same seed, fresh state: the same order gets the same waybill again.
    assert (await sim.create())["waybillNo"] == first["waybillNo"]


async def test_healthz_and_parcel_list(sim: Harness) -> None:
    await sim.create()
    assert (await sim.admin("GET", "/healthz"))["status"] == "ok"
    parcels = (await sim.admin("GET", "/admin/parcels"))["parcels"]
    assert [p["logisticsOrderNo"] for p in parcels] == [ORDER_NO]
    assert (await sim.client.get("/admin/parcels/1000000000000")).status == 404


async def test_serve_runs_until_cancelled(unused_tcp_port: int) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(SimConfig(seed=1), "127.0.0.1", unused_tcp_port, ready=ready))
    await asyncio.wait_for(ready.wait(), 5)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{unused_tcp_port}/healthz") as resp:
            assert (await resp.json())["status"] == "ok"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
