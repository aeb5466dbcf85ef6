"""Personal data is purged a configurable time after a shipment ends; counts and regions stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from logistics.accounts.clients import Credentials
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import idempotency_records, shipment_events, shipments, utcnow
from logistics.jobs.purge import purge_finished, purge_idempotency
from logistics.storage.db import Database

from support import auth, delivery_body


async def _delivered(api: TestClient, db: Database, hall: Credentials) -> str:
    created = await (await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))).json()
    async with db.write() as conn:
        for status, text in (("ordered", None), ("delivered", "已签收,本人签收,投递员:刘洋,电话:13903712222")):
            row = await lock_shipment(conn, created["id"])
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push", carrier_code="704", carrier_text=text)
    return created["id"]


async def test_ended_shipments_lose_their_personal_data_after_the_retention_time(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    sid = await _delivered(api, db, hall)
    assert await purge_finished(db, after=timedelta(days=180), now=utcnow() + timedelta(days=181)) == 1
    async with db.read() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == sid))).one()
        texts = (
            (await conn.execute(select(shipment_events.c.carrier_text).where(shipment_events.c.shipment_id == sid)))
            .scalars()
            .all()
        )
    assert row.recipient["name"] == "欧阳**"
    assert "13803712345" not in str(row.recipient) and "501室" not in str(row.recipient)
    assert (row.recipient["province"], row.recipient["city"], row.recipient["district"]) == (
        "河南省",
        "郑州市",
        "上街区",
    )
    assert row.verification_code is None and row.purged_at is not None
    assert not any("13903712222" in (t or "") for t in texts)


async def test_recent_and_running_shipments_are_kept_and_a_second_purge_does_nothing(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    await _delivered(api, db, hall)
    await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))  # still pending: never purged
    assert await purge_finished(db, after=timedelta(days=180)) == 0
    later = utcnow() + timedelta(days=200)
    assert await purge_finished(db, after=timedelta(days=180), now=later) == 1
    assert await purge_finished(db, after=timedelta(days=180), now=later) == 0
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(shipments))).scalar_one() == 2


async def _create(api: TestClient, hall: Credentials, key: str) -> tuple[int, dict[str, Any]]:
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall) | {"Idempotency-Key": key})
    return resp.status, await resp.json()


async def _stored_answers(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(idempotency_records.c.response_body))).scalars().all())


async def test_a_stored_create_answer_is_kept_for_replays_within_the_window(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    _, first = await _create(api, hall, "410106-2018-00731")
    assert await purge_idempotency(db, after=timedelta(hours=24), now=utcnow() + timedelta(hours=23)) == 0
    status, again = await _create(api, hall, "410106-2018-00731")
    assert (status, again["id"]) == (201, first["id"])


async def test_stored_create_answers_with_their_personal_data_are_deleted_after_the_window(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    await _create(api, hall, "410106-2018-00732")
    [answer] = await _stored_answers(db)
    assert "13803712345" in answer  # the recipient's mobile: why the record may not stay
    assert await purge_idempotency(db, after=timedelta(hours=24), now=utcnow() + timedelta(hours=25)) == 1
    assert await _stored_answers(db) == []
    assert await purge_idempotency(db, after=timedelta(hours=24), now=utcnow() + timedelta(hours=25)) == 0


async def test_a_key_sent_again_after_the_window_is_a_new_shipment(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    _, first = await _create(api, hall, "410106-2018-00733")
    await purge_idempotency(db, after=timedelta(hours=24), now=utcnow() + timedelta(hours=25))
    status, second = await _create(api, hall, "410106-2018-00733")
    assert status == 201 and second["id"] != first["id"]
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(shipments))).scalar_one() == 2
