"""Privacy purge: personal data goes a configurable time after a shipment ends; counts stay.

What is kept of a purged shipment is what statistics need and nothing that identifies a person: status,
kind, department, cases, dates, the region (province/city/district) and the masked forms of names and phones.
Rendered labels are deleted, and complaint texts are replaced (they are free text about people).

Idempotency records hold a create's whole answer (parties, 取件验证码) for replays; they are deleted once the
replay window has passed, whatever the shipment's state. A key sent again after that is a new request.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from labels.privacy import mask_address, mask_name, mask_phone
from logistics.domain.tables import complaints, idempotency_records, label_renders, shipment_events, shipments, utcnow
from logistics.storage.db import Database

PURGED_TEXT = "[已按隐私规定清除]"
_PHONE_IN_TEXT = re.compile(r"1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")


def _masked_party(party: dict[str, Any] | None) -> dict[str, Any] | None:
    if not party:
        return party
    return {
        **party,
        "name": mask_name(party["name"]),
        "phone": mask_phone(party["phone"]),
        "address": mask_address(party["address"]),
        "purged": True,
    }


async def purge_finished(db: Database, *, after: timedelta, now: datetime | None = None, batch: int = 500) -> int:
    """Purge shipments that ended before ``now - after``; returns how many. Safe to run again at any time."""
    now = now or utcnow()
    async with db.write() as conn:
        rows = (
            await conn.execute(
                select(shipments.c.id, shipments.c.sender, shipments.c.recipient)
                .where(shipments.c.finished_at < now - after, shipments.c.purged_at.is_(None))
                .order_by(shipments.c.id)
                .limit(batch)
                # Locked up front in id order, like every transaction that writes several shipments; a late
                # carrier event for one of them waits instead of deadlocking.
                .with_for_update(key_share=True)
            )
        ).all()
        for row in rows:
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == row.id)
                .values(
                    sender=_masked_party(row.sender),
                    recipient=_masked_party(row.recipient),
                    extra={},
                    verification_code=None,
                    purged_at=now,
                )
            )
        ids = [r.id for r in rows]
        if ids:
            await conn.execute(delete(label_renders).where(label_renders.c.shipment_id.in_(ids)))
            await conn.execute(update(complaints).where(complaints.c.shipment_id.in_(ids)).values(text=PURGED_TEXT))
            events = await conn.execute(
                select(shipment_events.c.id, shipment_events.c.carrier_text).where(
                    shipment_events.c.shipment_id.in_(ids), shipment_events.c.carrier_text.is_not(None)
                )
            )
            for event in events.all():
                # Carrier texts name couriers with their phones ("投递员:刘洋,电话:139…"): mask the numbers.
                masked = _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), event.carrier_text)
                if masked != event.carrier_text:
                    await conn.execute(
                        update(shipment_events).where(shipment_events.c.id == event.id).values(carrier_text=masked)
                    )
    return len(rows)



async def purge_idempotency(db: Database, *, after: timedelta, now: datetime | None = None) -> int:
    """Delete idempotency records older than ``now - after`` (the replay window); returns how many."""
    now = now or utcnow()
    async with db.write() as conn:
        result = await conn.execute(delete(idempotency_records).where(idempotency_records.c.created_at < now - after))
    return int(result.rowcount or 0)
