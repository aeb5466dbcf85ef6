"""Every stored time reads back as an aware UTC datetime, the same instant that was written, whatever zone it was
written in and whichever database keeps it (SQLite keeps no zone; PostgreSQL's driver decodes to UTC itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, insert, select

from logistics.domain.tables import clients
from logistics.storage.db import Database

BEIJING = timezone(timedelta(hours=8))


async def test_a_time_written_in_beijing_reads_back_as_the_same_instant_in_utc(db: Database) -> None:
    written = datetime(2026, 12, 5, 9, 30, 15, 250000, tzinfo=BEIJING)
    async with db.write() as conn:
        await conn.execute(
            insert(clients).values(
                id="cl_utc",
                name="郑州市政务服务中心",
                webhook_secret="whsec_test",
                created_at=written,
                webhook_previous_until=written,
            )
        )
    async with db.read() as conn:
        latest = select(func.max(clients.c.webhook_previous_until)).scalar_subquery()  # an aggregate, too
        query = select(clients.c.created_at, clients.c.webhook_previous_until, latest)
        row = (await conn.execute(query)).one()
    for value in row:
        assert value == written
        assert value.tzinfo is UTC
        assert value.hour == 1

