"""Authentication, tenant isolation, reading, listing and cancelling."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from logistics.accounts import clients
from logistics.accounts.clients import Credentials
from logistics.storage.db import Database

from support import auth, delivery_body


async def _create(api: TestClient, creds: Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201
    return await resp.json()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer lgk_not-a-key"}, {"Authorization": "Basic abc"}])
async def test_requests_without_a_valid_key_are_401_problems(api: TestClient, headers: dict[str, str]) -> None:
    resp = await api.get("/v1/shipments", headers=headers)
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_rotated_key_stops_working(settings: Any, db: Database, hall: Credentials) -> None:
    from aiohttp.test_utils import TestServer

    from logistics.api.app import create_app

    settings.api_key_cache_seconds = 0
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    try:
        new_key = await clients.rotate_key(db, hall.id)
        assert (await client.get("/v1/shipments", headers=auth(hall))).status == 401
        assert (await client.get("/v1/shipments", headers={"Authorization": f"Bearer {new_key}"})).status == 200
    finally:
        await client.close()


async def test_get_returns_the_shipment_with_its_events(api: TestClient, hall: Credentials) -> None:
    created = await _create(api, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}", headers=auth(hall))
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == created["id"]
    assert [(e["sequence"], e["status"], e["source"]) for e in body["events"]] == [(1, "pending", "api")]


async def test_another_clients_shipment_is_not_found(
    api: TestClient, hall: Credentials, other_hall: Credentials
) -> None:
    created = await _create(api, hall)
    for method, path in (("GET", f"/v1/shipments/{created['id']}"), ("POST", f"/v1/shipments/{created['id']}/cancel")):
        resp = await api.request(method, path, headers=auth(other_hall))
        assert resp.status == 404, path
        assert (await resp.json())["type"].endswith("/not-found")
    listed = await (await api.get("/v1/shipments", headers=auth(other_hall))).json()
    assert listed["data"] == []


async def test_unknown_shipment_is_a_404_problem(api: TestClient, hall: Credentials) -> None:
    resp = await api.get("/v1/shipments/shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C", headers=auth(hall))
    assert resp.status == 404
    body = await resp.json()
    assert body["status"] == 404 and body["instance"] == "/v1/shipments/shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"


async def test_cursor_pages_cover_every_shipment_exactly_once(api: TestClient, hall: Credentials) -> None:
    created = {(await _create(api, hall))["id"] for _ in range(23)}
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = await (await api.get(f"/v1/shipments?{query}", headers=auth(hall))).json()
        seen.extend(s["id"] for s in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(created) == 23
    assert set(seen) == created
    assert seen == sorted(seen, reverse=True)


async def test_list_filters_by_case_number_and_status(api: TestClient, hall: Credentials) -> None:
    wanted = await _create(api, hall, cases=[{"case_no": "410106-2018-00231", "item_name": "卫生许可证"}])
    await _create(api, hall)
    page = await (await api.get("/v1/shipments?case_no=410106-2018-00231", headers=auth(hall))).json()
    assert [s["id"] for s in page["data"]] == [wanted["id"]]
    page = await (await api.get("/v1/shipments?status=delivered", headers=auth(hall))).json()
    assert page["data"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=abc", "limit"), ("status=lost", "status"), ("cursor=zz", "cursor")],
)
async def test_bad_list_parameters_are_422(api: TestClient, hall: Credentials, query: str, field: str) -> None:
    resp = await api.get(f"/v1/shipments?{query}", headers=auth(hall))
    assert resp.status == 422
    assert [e["field"] for e in (await resp.json())["errors"]] == [field]


async def test_cancel_before_pickup_cancels_and_queues_the_carrier_cancel(
    api: TestClient, hall: Credentials, db: Database
) -> None:
    from sqlalchemy import select

    from logistics.domain.tables import outbox

    created = await _create(api, hall)
    resp = await api.post(
        f"/v1/shipments/{created['id']}/cancel", json={"reason": "申请人改为窗口自取"}, headers=auth(hall)
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "cancelled"
    assert body["events"][-1]["carrier_text"] == "申请人改为窗口自取"
    async with db.read() as conn:
        kinds = {r.kind for r in await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == created["id"]))}
    assert "cancel" in kinds


async def test_cancel_twice_is_harmless(api: TestClient, hall: Credentials) -> None:
    created = await _create(api, hall)
    first = await api.post(f"/v1/shipments/{created['id']}/cancel", headers=auth(hall))
    second = await api.post(f"/v1/shipments/{created['id']}/cancel", headers=auth(hall))
    assert first.status == second.status == 200
    assert len((await second.json())["events"]) == 2


async def test_cancel_after_pickup_is_a_409_problem(api: TestClient, hall: Credentials, db: Database) -> None:
    from logistics.domain.events import apply_event, lock_shipment

    created = await _create(api, hall)
    async with db.write() as conn:
        for status in ("ordered", "picked_up"):
            row = await lock_shipment(conn, created["id"])
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push")
    resp = await api.post(f"/v1/shipments/{created['id']}/cancel", headers=auth(hall))
    assert resp.status == 409
    assert "picked_up" in (await resp.json())["detail"]


async def test_misspelt_query_parameter_is_422_not_ignored(api: TestClient, hall: Credentials) -> None:
    resp = await api.get("/v1/shipments?stauts=delivered", headers=auth(hall))
    assert resp.status == 422
    assert [e["field"] for e in (await resp.json())["errors"]] == ["stauts"]
