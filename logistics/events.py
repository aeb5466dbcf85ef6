"""The one way a shipment's status changes: apply an event under the forward-only rules, in the caller's
transaction, together with the work it causes (outbox rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.lifecycle import FINAL, may_move
from logistics.models import shipment_events, shipments, utcnow


@dataclass(frozen=True, slots=True)
class Applied:
    sequence: int
    status: str  # the event's status
    changed: bool  # did the shipment's status move?
    previous_status: str
    shipment: dict[str, Any]  # the shipment row after the change


async def lock_shipment(conn: AsyncConnection, shipment_id: str) -> dict[str, Any] | None:
    query = select(shipments).where(shipments.c.id == shipment_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row is not None else None


async def apply_event(
    conn: AsyncConnection,
    shipment: dict[str, Any],
    *,
    status: str,
    source: str,
    occurred_at: datetime | None = None,
    carrier_code: str | None = None,
    carrier_text: str | None = None,
    location: str | None = None,
    dedup_key: str | None = None,
    updates: dict[str, Any] | None = None,
) -> Applied | None:
    """Record the event; move the status only forward. ``shipment`` must come from ``lock_shipment`` in ``conn``.

    Returns None for a duplicate (same ``dedup_key``). A late event that would move the shipment backwards is
    still kept in the history, but the status stays where it is.
    """
    now = utcnow()
    if dedup_key is not None:
        seen = await conn.execute(
            select(shipment_events.c.id).where(
                shipment_events.c.shipment_id == shipment["id"], shipment_events.c.dedup_key == dedup_key
            )
        )
        if seen.first() is not None:
            return None
    previous = shipment["status"]
    changed = may_move(previous, status)
    sequence = shipment["last_sequence"] + 1
    await conn.execute(
        insert(shipment_events).values(
            shipment_id=shipment["id"],
            sequence=sequence,
            status=status,
            occurred_at=occurred_at or now,
            recorded_at=now,
            source=source,
            carrier_code=carrier_code,
            carrier_text=carrier_text,
            location=location,
            dedup_key=dedup_key,
        )
    )
    values: dict[str, Any] = {"last_sequence": sequence, "updated_at": now, **(updates or {})}
    if changed:
        values["status"] = status
        if status in FINAL:
            values["finished_at"] = now
    await conn.execute(update(shipments).where(shipments.c.id == shipment["id"]).values(**values))
    shipment = {**shipment, **values}
    return Applied(sequence, status, changed, previous, shipment)
