"""The deadline watch: a shipment not delivered by its ``due_by`` (a Beijing date, inclusive) is marked overdue
and its client gets one ``shipment.overdue`` webhook.

Safe to run twice, anywhere and at once: each shipment is locked and re-checked, and ``overdue_at`` is set in the
same transaction as the webhook is owed, so a second run finds nothing to do.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update

from logistics import metrics
from logistics.domain.deadlines import beijing_today
from logistics.domain.events import emit, lock_shipment
from logistics.domain.statuses import FINAL
from logistics.domain.tables import shipments, utcnow
from logistics.storage.db import Database

log = logging.getLogger("logistics.jobs.overdue")
OVERDUE = "shipment.overdue"


def is_overdue(row: dict[str, object], now: datetime) -> bool:
    due = row["due_by"]
    return (
        due is not None
        and row["overdue_at"] is None
        and row["status"] not in FINAL
        and beijing_today(now) > due  # type: ignore[operator]
    )


async def mark_overdue(db: Database, now: datetime | None = None, *, limit: int = 500) -> int:
    now = now or utcnow()
    async with db.read() as conn:
        candidates = [
            r.id
            for r in await conn.execute(
                select(shipments.c.id)
                .where(
                    shipments.c.due_by < beijing_today(now),
                    shipments.c.overdue_at.is_(None),
                    shipments.c.status.not_in(sorted(FINAL)),
                )
                .limit(limit)
            )
        ]
    marked = 0
    for sid in candidates:
        async with db.write() as conn:
            row = await lock_shipment(conn, sid)
            if row is None or not is_overdue(row, now):
                continue  # delivered or marked meanwhile
            await conn.execute(update(shipments).where(shipments.c.id == sid).values(overdue_at=now))
            await emit(conn, {**row, "overdue_at": now}, OVERDUE, None, extra={"due_by": row["due_by"].isoformat()})
            marked += 1
            metrics.SHIPMENTS_OVERDUE.inc()
            log.info("shipment_overdue", extra={"shipment_id": sid})
    return marked
