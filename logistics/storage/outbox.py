"""The outbox: durable work items. Claiming takes a lease, so a worker that dies simply lets the lease run out
and the next sweep hands the task to someone else; finishing deletes the row only if the lease is still ours."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.domain.tables import outbox, utcnow
from logistics.storage.db import Database


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: str
    shipment_id: str | None
    payload: dict[str, Any]
    attempts: int  # this try's number: the failures recorded so far, plus one
    claim_token: str
    request_id: str | None
    created_at: datetime


# Work a person or a carrier is waiting on goes first; labels (printed later) and tracking polls (a fallback)
# yield to it, so under load rendering PDFs never starves the carrier orders of CPU.
PRIORITY = {"order": 0, "cancel": 0, "carrier_event": 0, "webhook": 1, "track": 2, "label": 2}


# Priority alone starves: while a batch's worth of carrier or webhook work is always due, labels and polls are
# never claimed (every label waits until the last webhook is sent). This share of each claim
# goes to the tasks that have waited longest, whatever their kind.
AGED_SHARE = 0.25


def _due(now: datetime) -> Any:
    return and_(outbox.c.due_at <= now, or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))


def _by_priority(kinds: Collection[str] | None, exclude: Collection[str]) -> list[str]:
    """The known kinds a claim may take, most urgent first."""
    return sorted(
        (k for k in PRIORITY if (kinds is None or k in kinds) and k not in exclude), key=lambda k: PRIORITY[k]
    )


async def claim_due(
    db: Database,
    *,
    limit: int,
    lease_seconds: float,
    now: datetime | None = None,
    kinds: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> list[Task]:
    """Lease up to ``limit`` due tasks, of ``kinds`` only when given and never of ``exclude`` (the runner keeps
    slow kinds in lanes of their own).

    The most urgent kinds are taken one kind at a time, each along the (kind, due_at) index; the rest of the
    claim goes oldest first, whatever the kind (the aged share, and kinds without a priority). One statement
    ordered by a priority expression would sort every due row: with tens of thousands queued each claim
    holds the single SQLite writer for long, and the workers spend their time claiming.
    """
    now = now or utcnow()
    which = [_due(now)]
    if kinds is not None:
        which.append(outbox.c.kind.in_(list(kinds)))
    if exclude:
        which.append(outbox.c.kind.not_in(list(exclude)))
    token = secrets.token_hex(8)
    aged = int(limit * AGED_SHARE)

    def claim(where: list[Any], count: int) -> Any:
        ids = select(outbox.c.id).where(*where).order_by(outbox.c.due_at).limit(count)
        if db.dialect == "postgresql":
            ids = ids.with_for_update(skip_locked=True)  # several workers claim disjoint sets without waiting
        # One statement that hands back what it claimed: reading the rows back by claim_token instead is a
        # full scan of the outbox (no index on it), which grows with every tracked shipment.
        return (
            update(outbox)
            .where(outbox.c.id.in_(ids.scalar_subquery()))
            .values(lease_until=now + timedelta(seconds=lease_seconds), claim_token=token)
            .returning(*outbox.c)
        )

    rows: list[Any] = []
    async with db.write() as conn:
        for kind in _by_priority(kinds, exclude):
            if len(rows) >= limit - aged:
                break
            rows += list(await conn.execute(claim([*which, outbox.c.kind == kind], limit - aged - len(rows))))
        if len(rows) < limit:
            # Rows claimed just now hold a lease, so they are not due any more: this takes others.
            rows += list(await conn.execute(claim(which, limit - len(rows))))
    return [
        Task(r.id, r.kind, r.shipment_id, r.payload or {}, r.attempts + 1, token, r.request_id, r.created_at)
        for r in rows
    ]


def task_row(
    kind: str,
    shipment_id: str | None,
    payload: dict[str, Any] | None = None,
    *,
    due_at: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    return {
        "kind": kind,
        "shipment_id": shipment_id,
        "payload": payload or {},
        "due_at": due_at or now,
        "attempts": 0,
        "lease_until": None,
        "claim_token": None,
        "last_error": None,
        "request_id": request_id,
        "created_at": now,
    }


async def insert_tasks(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(outbox), rows)


async def finish(conn: AsyncConnection, task: Task) -> bool:
    """Delete the task in the caller's transaction; False if our lease was lost (someone else has it now)."""
    result = await conn.execute(delete(outbox).where(outbox.c.id == task.id, outbox.c.claim_token == task.claim_token))
    return result.rowcount == 1


async def finish_many(conn: AsyncConnection, tasks: Collection[Task]) -> set[int]:
    """``finish`` for many tasks, one statement per claim; returns the ids of those that were still ours."""
    by_token: dict[str, list[int]] = {}
    for task in tasks:
        by_token.setdefault(task.claim_token, []).append(task.id)
    done: set[int] = set()
    for token, ids in by_token.items():
        result = await conn.execute(
            delete(outbox).where(outbox.c.id.in_(ids), outbox.c.claim_token == token).returning(outbox.c.id)
        )
        done.update(result.scalars())
    return done


async def retry_later(conn: AsyncConnection, task: Task, due_at: datetime, error: str) -> bool:
    """Record a failed try and when to try again.

    Only recorded failures count towards the backoff. Counting claims instead would let every claim lost to a
    killed worker double the next wait, so an order that failed once could wait half an hour after a few
    SIGKILLs. A task that kills its worker every time is still throttled, by its lease."""
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.id == task.id, outbox.c.claim_token == task.claim_token)
        .values(
            due_at=due_at, lease_until=None, claim_token=None, last_error=error[:1000], attempts=outbox.c.attempts + 1
        )
    )
    return result.rowcount == 1


async def renew_leases(conn: AsyncConnection, tasks: Collection[Task], until: datetime) -> None:
    """Extend the leases of tasks still ours: finished ones are gone, retried ones carry no claim token.

    On PostgreSQL a row locked by someone else is left for the next renewal (a third of a lease later): the
    handler finishing it, or a transaction making the shipment's webhook task due sooner, takes those rows in
    its own order, and a renewal waiting for one while holding another could deadlock with it."""
    by_token: dict[str, list[int]] = {}
    for task in tasks:
        by_token.setdefault(task.claim_token, []).append(task.id)
    for token, ids in by_token.items():
        ours = select(outbox.c.id).where(outbox.c.id.in_(ids), outbox.c.claim_token == token)
        if conn.dialect.name == "postgresql":
            ours = ours.with_for_update(skip_locked=True)
        await conn.execute(update(outbox).where(outbox.c.id.in_(ours.scalar_subquery())).values(lease_until=until))


async def count_due(db: Database, now: datetime | None = None) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(outbox).where(_due(now or utcnow())))).scalar_one()
