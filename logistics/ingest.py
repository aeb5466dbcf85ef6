"""Group commit for new shipments: many API requests, one transaction.

A create must be durable before it is answered, and one transaction per request is what makes the naive
service slow (and, on SQLite, what makes it fail with "database is locked"). Requests hand their rows to one
writer task and wait; the writer inserts everything that is waiting in a single transaction, commits, and then
wakes them all. Under load a batch holds hundreds of shipments; when idle it holds one and adds no delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.db import Database, insert_many
from logistics.models import idempotency_records, outbox, shipment_cases, shipment_events, shipments

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NewShipment:
    shipment: dict[str, Any]
    cases: list[dict[str, Any]]
    event: dict[str, Any]
    outbox: dict[str, Any] | None
    idempotency: dict[str, Any] | None = None  # client_id, key, request_hash, status_code, response_body
    future: asyncio.Future[Outcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def idem_key(self) -> tuple[str, str] | None:
        return (self.idempotency["client_id"], self.idempotency["key"]) if self.idempotency else None


@dataclass(frozen=True, slots=True)
class Outcome:
    created: bool
    existing: dict[str, Any] | None = None  # the stored idempotency record when another request won the key


class GroupCommitter:
    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self.on_commit: Callable[[], None] | None = None
        self._queue: asyncio.Queue[NewShipment] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():  # never leave a caller waiting forever
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(RuntimeError("service is shutting down"))

    async def submit(self, item: NewShipment) -> Outcome:
        await self._queue.put(item)
        return await item.future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self._commit(batch)
            except Exception as exc:  # the database is down or refused the batch: every waiter gets the error
                log.warning("group_commit_failed", extra={"batch": len(batch), "error": type(exc).__name__})
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, outcome in zip(batch, outcomes, strict=True):
                if not item.future.done():
                    item.future.set_result(outcome)
            if self.on_commit is not None and any(o.created for o in outcomes):
                self.on_commit()

    async def _commit(self, batch: list[NewShipment]) -> list[Outcome]:
        try:
            async with self.db.write() as conn:
                return await _insert_batch(conn, batch)
        except IntegrityError:
            # Another process took one of the idempotency keys between our check and our insert.
            # Rare: redo the batch one item per transaction so only the losers are affected.
            results = []
            for item in batch:
                try:
                    async with self.db.write() as conn:
                        results.extend(await _insert_batch(conn, [item]))
                except IntegrityError:
                    async with self.db.read() as conn:
                        existing = await _existing_records(conn, [item])
                    if item.idem_key not in existing:
                        raise
                    results.append(Outcome(False, existing[item.idem_key]))
            return results


async def _existing_records(conn: AsyncConnection, batch: list[NewShipment]) -> dict[tuple[str, str], dict[str, Any]]:
    keys = [item.idem_key for item in batch if item.idem_key]
    if not keys:
        return {}
    t = idempotency_records
    rows = await conn.execute(select(t).where(or_(*(and_(t.c.client_id == c, t.c.key == k) for c, k in keys))))
    return {(r.client_id, r.key): dict(r._mapping) for r in rows}


async def _insert_batch(conn: AsyncConnection, batch: list[NewShipment]) -> list[Outcome]:
    existing = await _existing_records(conn, batch)
    outcomes: list[Outcome] = []
    fresh: list[NewShipment] = []
    claimed: dict[tuple[str, str], dict[str, Any]] = {}
    for item in batch:
        key = item.idem_key
        if key is not None and key in existing:
            outcomes.append(Outcome(False, existing[key]))
        elif key is not None and key in claimed:  # two requests with one key in the same batch
            outcomes.append(Outcome(False, claimed[key]))
        else:
            if key is not None and item.idempotency is not None:
                claimed[key] = item.idempotency
            fresh.append(item)
            outcomes.append(Outcome(True))
    if fresh:
        await insert_many(conn, shipments, [i.shipment for i in fresh])
        await insert_many(conn, shipment_cases, [c for i in fresh for c in i.cases])
        await insert_many(conn, shipment_events, [i.event for i in fresh])
        await insert_many(conn, outbox, [i.outbox for i in fresh if i.outbox is not None])
        await insert_many(conn, idempotency_records, [i.idempotency for i in fresh if i.idempotency is not None])
    return outcomes
