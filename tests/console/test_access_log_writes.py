"""The access log's rows are written together: pages that show personal data at the same moment share one
write, and each page goes on only once its own row is stored."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from console_support import create
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from logistics.accounts import clients, staff
from logistics.console import queries
from logistics.domain.tables import personal_data_access, utcnow
from logistics.storage.db import Database


def _inserts(db: Database) -> list[str]:
    """Every statement that writes the access log, as the database is sent it."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PERSONAL_DATA_ACCESS"):
            sent.append(statement)

    for engine in {db.engine, db._write_engine}:
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
    return sent


async def _logged(db: Database) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(select(personal_data_access.c.shipment_id, personal_data_access.c.address))
        return sorted((r.shipment_id, r.address) for r in rows)


async def test_views_at_the_same_moment_are_stored_in_one_write(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipments = [await create(api, hall) for _ in range(3)]
    inserts = _inserts(db)
    desks = [f"10.20.30.{n}" for n in range(1, 9)]
    await asyncio.gather(
        *(
            queries.record_views(
                db, clerk.member.id, [s["id"] for s in shipments], address=desk, view="find", now=utcnow()
            )
            for desk in desks
        )
    )
    assert await _logged(db) == sorted((s["id"], desk) for s in shipments for desk in desks)
    assert len(inserts) == 1


async def test_each_page_goes_on_only_once_its_own_view_is_stored(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall)

    async def view_then_count(desk: str) -> int:
        await queries.record_views(db, clerk.member.id, [shipment["id"]], address=desk, view="shipment", now=utcnow())
        async with db.read() as conn:
            query = select(func.count()).where(personal_data_access.c.address == desk)
            return int((await conn.execute(query.select_from(personal_data_access))).scalar_one())

    assert await asyncio.gather(*(view_then_count(f"10.20.31.{n}") for n in range(1, 6))) == [1] * 5


async def test_a_write_that_fails_fails_every_view_waiting_on_it_and_the_next_view_is_stored(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall)
    ids = [shipment["id"]]
    outcomes = await asyncio.gather(
        queries.record_views(db, clerk.member.id, ids, address="10.20.32.1", view="find", now=utcnow()),
        queries.record_views(db, "stf_no_such_clerk", ids, address="10.20.32.2", view="find", now=utcnow()),
        return_exceptions=True,
    )
    assert all(isinstance(o, IntegrityError) for o in outcomes)  # one transaction: neither row was stored
    assert await _logged(db) == []
    await queries.record_views(db, clerk.member.id, [shipment["id"]], address="10.20.32.3", view="find", now=utcnow())
    assert await _logged(db) == [(shipment["id"], "10.20.32.3")]



async def _count_elsewhere(db: Database, desk: str) -> int:
    """The views from ``desk`` that another connection sees: what is committed."""
    async with db.read() as other:
        query = select(func.count()).select_from(personal_data_access).where(personal_data_access.c.address == desk)
        return int((await other.execute(query)).scalar_one())


async def test_a_view_recorded_on_the_pages_own_connection_is_committed_before_the_page_goes_on(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall)
    async with db.read() as conn:
        await queries.record_views(
            db, clerk.member.id, [shipment["id"]], address="10.20.33.1", view="shipment", now=utcnow(), conn=conn
        )
        assert await _count_elsewhere(db, "10.20.33.1") == 1


async def test_a_view_recorded_inside_a_snapshot_is_committed_before_the_page_goes_on(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall)
    async with db.read(snapshot=True) as conn:
        assert not db.commits_each_statement(conn)
        await queries.record_views(
            db, clerk.member.id, [shipment["id"]], address="10.20.33.2", view="shipment", now=utcnow(), conn=conn
        )
        assert await _count_elsewhere(db, "10.20.33.2") == 1


async def test_on_postgresql_a_read_connection_commits_each_statement(db: Database) -> None:
    async with db.read() as conn:
        assert db.commits_each_statement(conn) is (not db.is_sqlite)
