"""Privacy purge: personal data goes a configurable time after a shipment ends; counts stay.

What is kept of a purged shipment is what statistics need and nothing that identifies a person: status,
kind, department, cases, dates, the region (province/city/district) and the masked forms of names and phones.
Rendered labels (and the proof's PDF) are deleted, complaint texts are replaced (they are free text about
people), carrier texts lose phones and the applicant's and signer's names, and the proof of service keeps only
what is not about a person (logistics/domain/proof.py ``purged``).

Idempotency records hold a create's whole answer (parties, 取件验证码) for replays; they are deleted once the
replay window has passed, whatever the shipment's state. A key sent again after that is a new request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, select, update

from labels.privacy import mask_address, mask_name, mask_phone, mask_text
from logistics.domain import proof
from logistics.domain.tables import (
    complaints,
    follow_ups,
    idempotency_records,
    label_renders,
    ratings,
    shipment_events,
    shipments,
    utcnow,
)
from logistics.storage.db import Database

PURGED_TEXT = "[已按隐私规定清除]"


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


def _names(applicant: Any, facts: Any) -> tuple[str, ...]:
    """The people's names a shipment's event texts may hold: the applicant's and the signer's."""
    found = [str(applicant.get("name") or "")] if applicant else []
    if facts and facts["signer"].get("name"):
        found.append(str(facts["signer"]["name"]))
    return tuple(n for n in found if n)


async def purge_finished(db: Database, *, after: timedelta, now: datetime | None = None, batch: int = 500) -> int:
    """Purge shipments that ended before ``now - after``; returns how many. Safe to run again at any time."""
    now = now or utcnow()
    async with db.write() as conn:
        rows = (
            await conn.execute(
                select(
                    shipments.c.id, shipments.c.kind, shipments.c.sender, shipments.c.recipient, shipments.c.proof
                )
                .where(shipments.c.finished_at < now - after, shipments.c.purged_at.is_(None))
                .order_by(shipments.c.id)
                .limit(batch)
                # Locked up front in id order, like every transaction that writes several shipments; a late
                # carrier event for one of them waits instead of deadlocking.
                .with_for_update(key_share=True)
            )
        ).all()
        names: dict[str, tuple[str, ...]] = {}
        for row in rows:
            names[row.id] = _names(row.sender if row.kind == "intake" else row.recipient, row.proof)
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == row.id)
                .values(
                    sender=_masked_party(row.sender),
                    recipient=_masked_party(row.recipient),
                    extra={},
                    verification_code=None,
                    proof=proof.purged(row.proof) if row.proof is not None else None,
                    purged_at=now,
                )
            )
        ids = [r.id for r in rows]
        if ids:
            await _purge_resolution_notes(conn, ids)
            await conn.execute(delete(label_renders).where(label_renders.c.shipment_id.in_(ids)))
            # The hall's answer may name the applicant too (it is masked on the tracking page, but kept in full here).
            answer = case((complaints.c.answer.is_(None), None), else_=PURGED_TEXT)
            await conn.execute(
                update(complaints).where(complaints.c.shipment_id.in_(ids)).values(text=PURGED_TEXT, answer=answer)
            )
            # A rating's comment and a follow-up's action are free text about a person too; levels and dates stay.
            await conn.execute(
                update(ratings)
                .where(ratings.c.shipment_id.in_(ids), ratings.c.comment.is_not(None))
                .values(comment=PURGED_TEXT)
            )
            await conn.execute(
                update(follow_ups)
                .where(follow_ups.c.shipment_id.in_(ids), follow_ups.c.action.is_not(None))
                .values(action=PURGED_TEXT)
            )
            events = await conn.execute(
                select(shipment_events.c.id, shipment_events.c.shipment_id, shipment_events.c.carrier_text).where(
                    shipment_events.c.shipment_id.in_(ids), shipment_events.c.carrier_text.is_not(None)
                )
            )
            for event in events.all():
                # Carrier texts name couriers with their phones ("投递员:刘洋,电话:139…") and the signer
                # ("本人签收:欧阳娜娜"): mask the numbers and the names the shipment knows.
                masked = mask_text(event.carrier_text, names=names[event.shipment_id])
                if masked != event.carrier_text:
                    await conn.execute(
                        update(shipment_events).where(shipment_events.c.id == event.id).values(carrier_text=masked)
                    )
    return len(rows)



async def _purge_resolution_notes(conn: Any, ids: list[str]) -> None:
    """The note of the hall's resolution of a returned parcel is free text about a person: it goes too."""
    found = await conn.execute(select(shipments.c.id, shipments.c.resolution).where(shipments.c.id.in_(ids)))
    for row in found.all():
        if row.resolution and row.resolution.get("note"):
            resolution = {**row.resolution, "note": PURGED_TEXT}
            await conn.execute(update(shipments).where(shipments.c.id == row.id).values(resolution=resolution))


async def purge_idempotency(db: Database, *, after: timedelta, now: datetime | None = None) -> int:
    """Delete idempotency records older than ``now - after`` (the replay window); returns how many."""
    now = now or utcnow()
    async with db.write() as conn:
        result = await conn.execute(delete(idempotency_records).where(idempotency_records.c.created_at < now - after))
    return int(result.rowcount or 0)
