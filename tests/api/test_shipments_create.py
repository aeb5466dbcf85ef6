"""POST /v1/shipments: durable, validated, normalised, idempotent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from logistics.accounts.clients import Credentials
from logistics.api.schemas import ShipmentCreate
from logistics.api.shipments import answer_bodies, idempotency_claim, shipment_answer, shipment_row
from logistics.domain import ids
from logistics.domain.tables import outbox, shipments
from logistics.storage.db import Database
from logistics.storage.group_commit import ShipmentRow

from support import APPLICANT, auth, delivery_body, intake_body


async def test_create_answers_201_with_the_stored_shipment(api: TestClient, hall: Credentials) -> None:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
    assert resp.status == 201
    body = await resp.json()
    assert body["id"].startswith("shp_") and len(body["id"]) == 30
    assert body["status"] == "pending"
    assert body["waybill_no"] is None
    assert body["recipient"]["name"] == "欧阳娜娜"
    assert body["cases"] == [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}]
    assert len(body["verification_code"]) == 6 and body["verification_code"].isdigit()
    assert body["tracking_url"] == f"http://127.0.0.1:8080/t/{body['tracking_code']}"
    assert resp.headers["Location"] == f"/v1/shipments/{body['id']}"


async def test_create_is_durable_with_its_outbox_row_before_the_answer(
    api: TestClient, hall: Credentials, db: Database
) -> None:
    body = await (await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))).json()
    async with db.read() as conn:
        stored = (await conn.execute(select(shipments.c.status).where(shipments.c.id == body["id"]))).scalar_one()
        task = (await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == body["id"]))).scalar_one()
    assert stored == "pending"
    assert task == "order"


async def test_intake_keeps_the_pickup_window(api: TestClient, hall: Credentials) -> None:
    request = intake_body()
    resp = await api.post("/v1/shipments", json=request, headers=auth(hall))
    assert resp.status == 201
    body = await resp.json()
    assert body["kind"] == "intake"
    assert body["pickup_window"]["start"].endswith("Z")
    assert body["verification_code"] is None


async def test_fullwidth_digits_and_stray_spaces_are_normalised(api: TestClient, hall: Credentials) -> None:
    recipient = {**APPLICANT, "name": " 欧阳娜娜 ", "phone": "１３８ ０３７１ ２３４５", "postcode": "４５００４１"}
    resp = await api.post("/v1/shipments", json=delivery_body(recipient=recipient), headers=auth(hall))
    assert resp.status == 201
    body = await resp.json()
    assert body["recipient"]["phone"] == "13803712345"
    assert body["recipient"]["name"] == "欧阳娜娜"
    assert body["recipient"]["postcode"] == "450041"


async def test_landline_with_extension_is_accepted_and_normalised(api: TestClient, hall: Credentials) -> None:
    sender = {**delivery_body()["sender"], "phone": "(0371)68123456转801"}
    resp = await api.post("/v1/shipments", json=delivery_body(sender=sender), headers=auth(hall))
    assert resp.status == 201
    assert (await resp.json())["sender"]["phone"] == "0371-68123456-801"


async def test_idempotent_replay_returns_the_first_response(api: TestClient, hall: Credentials) -> None:
    headers = {**auth(hall), "Idempotency-Key": "sj-spxt-410106-2018-00095-send"}
    first = await api.post("/v1/shipments", json=delivery_body(), headers=headers)
    second = await api.post("/v1/shipments", json=delivery_body(), headers=headers)
    assert first.status == second.status == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (await second.json()) == (await first.json())


async def test_idempotency_key_with_another_body_is_422(api: TestClient, hall: Credentials) -> None:
    headers = {**auth(hall), "Idempotency-Key": "sj-spxt-410106-2018-00095-send"}
    await api.post("/v1/shipments", json=delivery_body(), headers=headers)
    other = delivery_body(window="综合受理7号窗口")
    resp = await api.post("/v1/shipments", json=other, headers=headers)
    assert resp.status == 422
    assert (await resp.json())["type"].endswith("/idempotency-mismatch")


async def test_idempotency_keys_are_per_client(api: TestClient, hall: Credentials, other_hall: Credentials) -> None:
    key = {"Idempotency-Key": "batch-2026-11-26-001"}
    a = await (await api.post("/v1/shipments", json=delivery_body(), headers={**auth(hall), **key})).json()
    b = await (await api.post("/v1/shipments", json=delivery_body(), headers={**auth(other_hall), **key})).json()
    assert a["id"] != b["id"]


async def test_concurrent_requests_with_one_key_make_one_shipment(
    api: TestClient, hall: Credentials, db: Database
) -> None:
    headers = {**auth(hall), "Idempotency-Key": "sj-spxt-concurrent-1"}
    responses = await asyncio.gather(
        *(api.post("/v1/shipments", json=delivery_body(), headers=headers) for _ in range(10))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {201}
    assert len({b["id"] for b in bodies}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(shipments))).scalar_one() == 1


async def test_64_concurrent_creates_all_succeed(api: TestClient, hall: Credentials, db: Database) -> None:
    responses = await asyncio.gather(
        *(api.post("/v1/shipments", json=delivery_body(), headers=auth(hall)) for _ in range(64))
    )
    assert [r.status for r in responses] == [201] * 64
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(shipments))).scalar_one() == 64
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 64


def _row_and_answer(body: dict[str, Any], token: str | None) -> tuple[ShipmentRow, dict[str, Any]]:
    spec = ShipmentCreate.model_validate(body)
    row = shipment_row(
        spec,
        client_id="cli_zhengzhou_shangjie",
        request_id="rq-7",
        carrier="ems",
        now=datetime(2026, 12, 4, 2, 30, tzinfo=UTC),
        applicant_token=token,
        link_days=7,
    )
    return row, shipment_answer(row, [(c.case_no, c.item_name) for c in spec.cases], "https://jdz.example.cn")


def test_the_row_of_an_applicant_choice_keeps_only_the_hash_of_its_link() -> None:
    token = "k7TqY2mWc9Lr4XbN8pZs3VdH6gJf1uEa"
    row, _ = _row_and_answer(delivery_body(recipient=None, applicant_choice=True), token)
    assert row.status == "awaiting_applicant" and row.recipient is None
    assert row.applicant_token_hash == ids.hash_secret(token)
    assert row.applicant_expires_at == datetime(2026, 12, 11, 2, 30, tzinfo=UTC)


def test_only_the_first_answer_of_an_applicant_choice_holds_its_link() -> None:
    token = "k7TqY2mWc9Lr4XbN8pZs3VdH6gJf1uEa"
    _, answer = _row_and_answer(delivery_body(recipient=None, applicant_choice=True), token)
    body, stored = answer_bodies(answer, token, True, "https://jdz.example.cn")
    assert orjson.loads(body)["applicant_url"] == f"https://jdz.example.cn/a/{token}"
    assert stored is not None and orjson.loads(stored)["applicant_url"] is None
    assert orjson.loads(stored) == {**orjson.loads(body), "applicant_url": None}


def test_an_answer_without_an_idempotency_key_is_not_kept() -> None:
    _, answer = _row_and_answer(delivery_body(), None)
    body, stored = answer_bodies(answer, None, False, "https://jdz.example.cn")
    assert stored is None and orjson.loads(body)["recipient"]["name"] == "欧阳娜娜"


def test_an_idempotency_claim_is_the_same_whatever_the_order_of_the_bodys_fields() -> None:
    body = delivery_body()
    reordered = dict(reversed(list(body.items())))
    first = idempotency_claim("cli_zhengzhou_shangjie", "apv-2026-0042", body, "{}")
    again = idempotency_claim("cli_zhengzhou_shangjie", "apv-2026-0042", reordered, "{}")
    other = idempotency_claim("cli_zhengzhou_shangjie", "apv-2026-0042", {**body, "window": "综合受理5号窗口"}, "{}")
    assert first == again and first.request_hash != other.request_hash
