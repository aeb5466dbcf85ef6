"""GET /t/{code}: the public timeline — masked, plain Chinese, JSON by Accept, 404 for unknown codes, limited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from people_support import advance, create_shipment, ordered

from logistics.accounts import clients
from logistics.api.schemas import BEIJING
from logistics.domain.events import apply_event, lock_shipment
from logistics.pages.views import beijing, window_text
from logistics.redis.ratelimit import RateLimiter
from logistics.storage.db import Database

from support import auth, intake_body

JSON = {"Accept": "application/json"}


async def test_the_page_shows_the_status_and_timeline_in_chinese(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    await advance(db, shipment["id"], "picked_up", "in_transit")
    resp = await api.get(f"/t/{shipment['tracking_code']}")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert '<h1 id="status">运输中</h1>' in page
    for words in ("邮政已揽收", "已通知邮政，等待揽收", "已受理，等待安排邮政寄递", "食品经营许可证核发"):
        assert words in page


async def test_the_page_shows_only_masked_personal_data(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert "欧阳**" in page and "138******45" in page
    assert "济源路8号院3号楼*单元***室" in page
    for secret in ("欧阳娜娜", "13803712345", "2单元501室", shipment["verification_code"]):
        assert secret not in page


async def test_the_halls_own_phone_is_shown_whole_and_never_broken(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert '<span class="phone">0371-68123456</span>' in page
    view = await (await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)).json()
    assert view["sender"]["phone"] == "0371-68123456"


async def test_a_phone_number_inside_a_carrier_text_is_masked(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment["id"])
        assert row is not None
        await apply_event(
            conn, row, status="out_for_delivery", source="carrier_push", carrier_text="投递员：王师傅，电话13912345678"
        )
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert "13912345678" not in page
    assert "139******78" in page


async def test_the_timeline_is_ordered_by_when_things_happened(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    now = datetime.now(UTC)
    await advance(db, shipment["id"], "in_transit", occurred_at=now - timedelta(hours=1))
    await advance(db, shipment["id"], "picked_up", occurred_at=now - timedelta(hours=3))  # a late push
    view = await (await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)).json()
    statuses = [e["status"] for e in view["events"]]
    assert statuses.index("in_transit") < statuses.index("picked_up")
    assert view["status"] == "in_transit"


async def test_json_is_served_when_the_client_asks_for_it(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    resp = await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)
    assert resp.content_type == "application/json"
    view = await resp.json()
    assert view["status_text"] == "已通知邮政，等待揽收"
    assert view["recipient"] == {
        "name": "欧阳**",
        "phone": "138******45",
        "address": "河南省郑州市上街区新安路街道济源路8号院3号楼*单元***室",
    }
    assert "verification_code" not in view and "id" not in view


@pytest.mark.parametrize("headers", [{}, JSON])
async def test_an_unknown_code_is_a_404(api: TestClient, headers: dict[str, str]) -> None:
    resp = await api.get("/t/23456789ABCDE", headers=headers)
    assert resp.status == 404
    if headers:
        assert resp.content_type == "application/problem+json"
    else:
        assert "没有找到这件邮件" in await resp.text()


async def test_unknown_and_known_codes_run_the_same_queries(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    from sqlalchemy import event

    shipment = await ordered(api, db, hall)
    counts: list[int] = []
    for code in (shipment["tracking_code"], "23456789ABCDE"):
        seen: list[str] = []

        def count(*_: Any, seen: list[str] = seen) -> None:
            seen.append("q")

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            await api.get(f"/t/{code}")
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        counts.append(len(seen))
    assert counts[0] == counts[1]


async def test_tracking_is_rate_limited_per_client(settings: Any, db: Database, hall: clients.Credentials) -> None:
    from aiohttp.test_utils import TestServer

    from logistics.api.app import create_app

    settings.tracking_rate_per_minute = 3
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    try:
        shipment = await create_shipment(client, hall)
        statuses = [(await client.get(f"/t/{shipment['tracking_code']}")).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        blocked = await client.get("/t/23456789ABCDE")
        assert blocked.status == 429
        assert int(blocked.headers["Retry-After"]) >= 1
        assert "访问过于频繁" in await blocked.text()
    finally:
        await client.close()


class _DeadRedis:
    def pipeline(self, **_: Any) -> Any:
        raise ConnectionError("redis is down")


async def test_without_redis_the_limit_falls_back_to_a_local_bucket() -> None:
    limiter = RateLimiter(_DeadRedis(), "test")
    verdicts = [(await limiter.hit("track", "203.0.113.9", 2, 60)).allowed for _ in range(3)]
    assert verdicts == [True, True, False]
    assert (await limiter.hit("track", "203.0.113.10", 2, 60)).allowed


async def test_pages_forbid_inline_scripts_and_send_no_referrer(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await ordered(api, db, hall)
    resp = await api.get(f"/t/{shipment['tracking_code']}")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Referrer-Policy"] == "same-origin"


def tomorrow_morning() -> tuple[datetime, datetime]:
    """Tomorrow 09:00–12:00 in Beijing, the window an applicant books for the courier to call."""
    day = (datetime.now(BEIJING) + timedelta(days=1)).date()
    opens = datetime(day.year, day.month, day.day, 9, 0, tzinfo=BEIJING)
    return opens, opens + timedelta(hours=3)


async def test_an_intake_page_shows_the_booked_pickup_window_in_beijing_time(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    opens, closes = tomorrow_morning()
    # Sent in UTC, as a client may: the page still speaks Beijing time.
    window = {"start": opens.astimezone(UTC).isoformat(), "end": closes.astimezone(UTC).isoformat()}
    resp = await api.post("/v1/shipments", json=intake_body(pickup_window=window), headers=auth(hall))
    assert resp.status == 201, await resp.text()
    code = (await resp.json())["tracking_code"]
    page = await (await api.get(f"/t/{code}")).text()
    expected = f"{opens.month}月{opens.day}日 09:00–12:00"
    assert f'<dt id="pickup-window-label">上门取件</dt><dd id="pickup-window">{expected}</dd>' in page
    view = await (await api.get(f"/t/{code}", headers=JSON)).json()
    assert view["pickup_window"] == {
        "start": opens.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "end": closes.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


async def test_a_delivery_page_has_no_pickup_window(api: TestClient, db: Database, hall: clients.Credentials) -> None:
    shipment = await ordered(api, db, hall)
    page = await (await api.get(f"/t/{shipment['tracking_code']}")).text()
    assert "pickup-window" not in page
    view = await (await api.get(f"/t/{shipment['tracking_code']}", headers=JSON)).json()
    assert view["pickup_window"] is None


def test_a_window_past_midnight_names_both_days() -> None:
    opens = datetime(2026, 12, 31, 22, 0, tzinfo=BEIJING)
    assert window_text(opens, opens + timedelta(hours=1)) == "12月31日 22:00–23:00"
    assert window_text(opens, opens + timedelta(hours=3)) == "12月31日 22:00–1月1日 01:00"
    # 01:30 UTC is 09:30 in Beijing.
    assert window_text(datetime(2026, 12, 5, 1, 30, tzinfo=UTC), datetime(2026, 12, 5, 4, 0, tzinfo=UTC)) == (
        "12月5日 09:30–12:00"
    )


def test_a_time_is_shown_to_the_minute_in_beijing_time_whatever_zone_it_comes_in() -> None:
    assert beijing(datetime(2026, 12, 31, 16, 5, 59, tzinfo=UTC)) == "2027-01-01 00:05"  # a stored time
    assert beijing(datetime(2026, 3, 1, 7, 9, tzinfo=BEIJING)) == "2026-03-01 07:09"  # as EMS reports it
    assert beijing(datetime(2026, 2, 28, 23, 9, tzinfo=timezone(timedelta(hours=-1)))) == "2026-03-01 08:09"
    assert beijing(None) == "—"
