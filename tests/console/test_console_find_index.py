"""Finding by the applicant's phone or name is an index lookup (migrations 0016, 0022), on both databases: it finds
the applicant of either kind, never reads the department's rows, works for rows stored before the index existed, and
finds nothing once the purge has masked the applicant. A shipment still starting (pending, awaiting the applicant)
is in neither index, so a create pays for neither: it is found among the department's starting shipments."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp.test_utils import TestClient
from console_support import CIVIL, MARKET, create, explain, move
from sqlalchemy import literal_column, select

from logistics.accounts import clients
from logistics.console.queries import applicant_field, find
from logistics.domain.tables import STARTED_SQL, shipments, utcnow
from logistics.jobs.purge import purge_finished
from logistics.storage import migrate
from logistics.storage.db import Database

from support import APPLICANT, HALL, auth, intake_body

INTAKE_APPLICANT = {"name": "张伟", "phone": "13937112345"}  # intake_body's sender


async def _intake(api: TestClient, hall: clients.Credentials) -> dict[str, object]:
    resp = await api.post("/v1/shipments", json=intake_body(), headers=auth(hall))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _plan(db: Database, key: str, value: str) -> str:
    """The database's own account of how it finds started shipments by the applicant's ``key``."""
    query = select(shipments.c.id).where(applicant_field(db.dialect, key) == value, literal_column(STARTED_SQL))
    async with db.read() as conn:
        compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
    return await explain(db, str(compiled))


async def test_the_applicant_of_a_delivery_and_of_an_intake_is_found_by_phone_and_by_name(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    delivery = await create(api, hall)
    intake = await _intake(api, hall)
    elsewhere = await create(api, hall, department="二七区税务局")
    for q, expected in (
        (APPLICANT["phone"], delivery["id"]),
        (APPLICANT["name"], delivery["id"]),
        (INTAKE_APPLICANT["phone"], intake["id"]),
        (INTAKE_APPLICANT["name"], intake["id"]),
    ):
        rows, personal = await find(db, [MARKET, CIVIL], q)
        assert [r["id"] for r in rows] == [expected] and personal, q
    rows, _ = await find(db, ["二七区税务局"], APPLICANT["phone"])
    assert [r["id"] for r in rows] == [elsewhere["id"]]


async def test_the_halls_own_phone_is_not_an_applicant_and_finds_nothing(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    await create(api, hall)
    for q in (HALL["phone"], HALL["name"]):
        assert (await find(db, [MARKET], q))[0] == [], q


async def test_a_shipment_still_pending_is_found_and_so_is_one_ordered(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    pending = await create(api, hall)
    ordered = await create(api, hall, window="综合受理5号窗口")
    await move(db, ordered["id"], "ordered", waybill="1151263812345")
    await create(api, hall, department=CIVIL)  # the same applicant, pending in a department the clerk is not in
    for q in (APPLICANT["phone"], APPLICANT["name"]):
        rows, personal = await find(db, [MARKET], q)
        assert sorted(r["id"] for r in rows) == sorted([pending["id"], ordered["id"]]) and personal, q


async def test_phone_and_name_lookups_use_their_indexes(db: Database) -> None:
    for key in ("phone", "name"):
        plan = await _plan(db, key, "13803712345")
        assert f"ix_shipments_applicant_{key}" in plan, plan


async def test_shipments_stored_before_the_indexes_existed_are_found_through_them(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    delivery = await create(api, hall)
    await move(db, delivery["id"], "ordered")
    await asyncio.to_thread(migrate.downgrade, db.url, "0011")
    await migrate.upgrade_async(db.url)  # builds the indexes over the rows already there
    rows, _ = await find(db, [MARKET], APPLICANT["phone"])
    assert [r["id"] for r in rows] == [delivery["id"]]
    assert "ix_shipments_applicant_phone" in await _plan(db, "phone", APPLICANT["phone"])


async def test_the_purge_removes_the_applicants_search_keys(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    delivery = await create(api, hall)
    await move(db, delivery["id"], "ordered", "picked_up", "in_transit", "out_for_delivery", "delivered")
    assert [r["id"] for r in (await find(db, [MARKET], APPLICANT["phone"]))[0]] == [delivery["id"]]
    assert await purge_finished(db, after=timedelta(days=180), now=utcnow() + timedelta(days=181)) == 1
    for q in (APPLICANT["phone"], APPLICANT["name"]):
        assert (await find(db, [MARKET], q))[0] == [], q
    async with db.read() as conn:
        keys = (
            await conn.execute(
                select(applicant_field(db.dialect, "phone"), applicant_field(db.dialect, "name")).where(
                    shipments.c.id == delivery["id"]
                )
            )
        ).one()
    assert APPLICANT["phone"] not in keys and APPLICANT["name"] not in keys
    assert keys[0].startswith(APPLICANT["phone"][:3]) and "*" in keys[0]  # what the index holds now is masked
