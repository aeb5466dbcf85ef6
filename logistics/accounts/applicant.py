"""The applicant's choice link: mail delivery (with their address and, for intake, the pickup slot) or the window.

The link is ``{base_url}/a/{token}``: a 256-bit random token (unguessable; nothing to sign), of which only the
SHA-256 is stored on the shipment. It expires (``applicant_link_days``) and works once: the first choice
moves the shipment out of ``awaiting_applicant`` and marks the link used, in one transaction with the event,
the webhook (through apply_event) and, for mail, the carrier ``order`` task.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.api.schemas import Party, PickupWindow
from logistics.domain.events import apply_event, emit, lock_shipment
from logistics.domain.ids import hash_secret
from logistics.domain.tables import shipments, utcnow
from logistics.domain.wording import LINK_REISSUED_TEXT
from logistics.storage.db import Database
from logistics.storage.outbox import insert_tasks, task_row

log = logging.getLogger("logistics.accounts.applicant")
LINK_EXPIRED = "shipment.applicant_link_expired"

State = Literal["open", "unknown", "used", "expired", "closed"]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def link_columns(token: str | None, now: datetime, days: float) -> dict[str, Any]:
    """The shipment columns of a new link (all None without one: every created row has the same keys)."""
    return {
        "applicant_token_hash": hash_secret(token) if token else None,
        "applicant_expires_at": now + timedelta(days=days) if token else None,
        "applicant_used_at": None,
        "applicant_expiry_notified_at": None,
    }


def link_url(base_url: str, token: str) -> str:
    return f"{base_url}/a/{token}"


def state_of(row: dict[str, Any] | None, now: datetime) -> State:
    if row is None:
        return "unknown"
    if row["applicant_used_at"] is not None:
        return "used"
    if row["status"] != "awaiting_applicant":
        return "closed"  # the client cancelled it, or it moved on without the link
    if row["applicant_expires_at"] is not None and row["applicant_expires_at"] <= now:
        return "expired"
    return "open"


async def find(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    # Always one indexed lookup by hash, whatever the token looks like: no early exit that times differently.
    row = (await conn.execute(select(shipments).where(shipments.c.applicant_token_hash == hash_secret(token)))).first()
    return dict(row._mapping) if row is not None else None


async def _locked(conn: AsyncConnection, token: str) -> dict[str, Any] | None:
    row = await find(conn, token)
    return await lock_shipment(conn, row["id"]) if row is not None else None


async def notify_expired(conn: AsyncConnection, row: dict[str, Any], now: datetime) -> bool:
    """Owe the client one ``shipment.applicant_link_expired`` webhook; ``row`` must be locked in ``conn``."""
    if row["applicant_expiry_notified_at"] is not None or state_of(row, now) != "expired":
        return False
    await conn.execute(update(shipments).where(shipments.c.id == row["id"]).values(applicant_expiry_notified_at=now))
    await emit(
        conn,
        {**row, "applicant_expiry_notified_at": now},
        LINK_EXPIRED,
        None,
        extra={"applicant_link": {"expired_at": row["applicant_expires_at"]}},
    )
    log.info("applicant_link_expired", extra={"shipment_id": row["id"]})
    return True


async def notify_expired_links(db: Database, now: datetime | None = None, *, limit: int = 200) -> int:
    """The periodic check: every expired, unused link not yet reported gets its webhook. Safe to run anywhere
    and often (the row lock and the notified-at column make it once per link)."""
    now = now or utcnow()
    async with db.read() as conn:
        due = [
            r.id
            for r in await conn.execute(
                select(shipments.c.id)
                .where(
                    shipments.c.status == "awaiting_applicant",
                    shipments.c.applicant_expires_at <= now,
                    shipments.c.applicant_used_at.is_(None),
                    shipments.c.applicant_expiry_notified_at.is_(None),
                )
                .limit(limit)
            )
        ]
    sent = 0
    for sid in due:
        async with db.write() as conn:
            row = await lock_shipment(conn, sid)
            if row is not None and await notify_expired(conn, row, now):
                sent += 1
    return sent


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State  # "open" when the choice was recorded
    shipment: dict[str, Any] | None


async def choose_mail(
    db: Database, token: str, party: Party, window: PickupWindow | None, *, request_id: str | None = None
) -> Outcome:
    now = utcnow()
    async with db.write() as conn:
        row = await _locked(conn, token)
        state = state_of(row, now)
        if state != "open" or row is None:
            if state == "expired" and row is not None:
                await notify_expired(conn, row, now)
            return Outcome(state, row)
        side = "sender" if row["kind"] == "intake" else "recipient"
        updates: dict[str, Any] = {side: party.model_dump(), "applicant_used_at": now}
        if row["kind"] == "intake" and window is not None:
            updates |= {"pickup_start": window.start, "pickup_end": window.end}
        applied = await apply_event(
            conn, row, status="pending", source="applicant", carrier_text="申请人选择邮寄", updates=updates
        )
        assert applied is not None  # no dedup key: never a duplicate
        await insert_tasks(conn, [task_row("order", row["id"], request_id=request_id)])
    log.info("applicant_chose_mail", extra={"shipment_id": row["id"]})
    return Outcome("open", applied.shipment)


async def choose_window(db: Database, token: str) -> Outcome:
    now = utcnow()
    async with db.write() as conn:
        row = await _locked(conn, token)
        state = state_of(row, now)
        if state != "open" or row is None:
            if state == "expired" and row is not None:
                await notify_expired(conn, row, now)
            return Outcome(state, row)
        applied = await apply_event(
            conn,
            row,
            status="declined",
            source="applicant",
            carrier_text="申请人选择窗口办理",
            updates={"applicant_used_at": now},
        )
        assert applied is not None
    log.info("applicant_chose_window", extra={"shipment_id": row["id"]})
    return Outcome("open", applied.shipment)


async def reissue(db: Database, client_id: str, shipment_id: str, days: float) -> tuple[str, datetime] | None:
    """A fresh link for a shipment still awaiting the applicant (the old one stops working); None otherwise."""
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment_id)
        if row is None or row["client_id"] != client_id:
            return None
        return await reissue_locked(conn, row, days)


async def reissue_locked(
    conn: AsyncConnection, row: dict[str, Any], days: float, *, staff_id: str | None = None
) -> tuple[str, datetime]:
    """A fresh link for ``row`` (from ``lock_shipment`` in ``conn``), or ValueError(status) when it no longer
    awaits the applicant. A link re-issued on the console (``staff_id``) is written in the history with the
    clerk. The API and the hall's console both re-issue here."""
    if row["status"] != "awaiting_applicant":
        raise ValueError(row["status"])
    token = new_token()
    columns = link_columns(token, utcnow(), days)
    if staff_id is None:
        await conn.execute(update(shipments).where(shipments.c.id == row["id"]).values(**columns))
    else:
        await apply_event(
            conn,
            row,
            status=row["status"],
            source="console",
            carrier_text=LINK_REISSUED_TEXT,
            updates=columns,
            staff_id=staff_id,
        )
    return token, columns["applicant_expires_at"]
