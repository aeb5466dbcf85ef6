"""The create path's group commit: the rows it writes through the driver, and how it fails."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from logistics.accounts.clients import Credentials
from logistics.api.appkeys import COMMITTER
from logistics.domain import ids
from logistics.domain.tables import idempotency_records, outbox, shipment_cases, shipment_events, shipments
from logistics.storage import group_commit
from logistics.storage.db import Database, DatabaseUnavailable, SqliteBatchWriter
from logistics.storage.group_commit import GroupCommitter, IdempotencyClaim, NewShipment, Outcome, ShipmentRow

from support import APPLICANT, auth, delivery_body, eventually, intake_body


def _without_events(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "events"}


@pytest.mark.parametrize(
    "request_body",
    [
        delivery_body(),
        intake_body(),
        delivery_body(recipient=None, applicant_choice=True, verification_code=False, metadata={}),
        delivery_body(contents=[], metadata={"n": 3, "ok": True, "x": None, "f": 1.5}),
    ],
    ids=["delivery", "intake", "applicant-choice", "no-contents"],
)
async def test_the_create_answer_is_what_a_read_shows(
    api: TestClient, hall: Credentials, request_body: dict[str, Any]
) -> None:
    # The create handler builds its answer without present.shipment_json; the two must never drift apart.
    created = await (await api.post("/v1/shipments", json=request_body, headers=auth(hall))).json()
    read = await (await api.get(f"/v1/shipments/{created['id']}", headers=auth(hall))).json()
    if request_body.get("applicant_choice"):
        assert created["applicant_url"].startswith("http://127.0.0.1:8080/a/")
        created["applicant_url"] = None  # a credential shown once; reads show null
    assert _without_events(read) == created
    assert list(read) == [*created, "events"]  # the same key order too


async def _while_another_process_writes(api: TestClient, db: Database, request: Any) -> Any:
    """``request`` (a coroutine) answered while another process held SQLite's write lock: the group commit
    waits for it in the writer's thread, where it writes the batch its other way (five statements over JSON)."""
    writer = api.app[COMMITTER].writer
    assert isinstance(writer, SqliteBatchWriter)
    other = sqlite3.connect(make_url(db.url).database or "", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        answer = asyncio.ensure_future(request)

        async def handed_to_the_thread() -> bool:
            return writer.waits == 1

        await eventually(handed_to_the_thread)
        other.execute("COMMIT")
        return await answer
    finally:
        other.close()


@pytest.mark.parametrize("path", ["on the event loop", "in the writer's thread"])
async def test_create_stores_every_column(api: TestClient, hall: Credentials, db: Database, path: str) -> None:
    key = {"Idempotency-Key": "columns-1"}
    request = api.post("/v1/shipments", json=intake_body(), headers={**auth(hall), **key, "X-Request-ID": "rq-1"})
    if path == "on the event loop":
        resp = await request
    elif db.is_sqlite:
        resp = await _while_another_process_writes(api, db, request)
    else:
        request.close()
        pytest.skip("PostgreSQL writes every batch one way")
    body = await resp.json()
    async with db.read() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == body["id"]))).one()._mapping
        cases = (await conn.execute(select(shipment_cases).where(shipment_cases.c.shipment_id == body["id"]))).all()
        events = (await conn.execute(select(shipment_events).where(shipment_events.c.shipment_id == body["id"]))).all()
        tasks = (await conn.execute(select(outbox).where(outbox.c.shipment_id == body["id"]))).all()
        record = (await conn.execute(select(idempotency_records))).one()._mapping
    created = datetime.fromisoformat(body["created_at"])
    assert row["client_id"] == hall.id and row["kind"] == "intake" and row["status"] == "pending"
    assert row["department"] == body["department"] and row["window"] == body["window"]
    assert row["sender"] == body["sender"] and row["recipient"] == body["recipient"]
    assert row["contents"] == body["contents"] and row["extra"] == {}
    assert row["pickup_start"] == datetime.fromisoformat(body["pickup_window"]["start"])
    assert row["pickup_end"] == datetime.fromisoformat(body["pickup_window"]["end"])
    assert row["created_at"] == row["updated_at"] == created and row["created_at"].tzinfo is not None
    assert row["tracking_code"] == body["tracking_code"] and row["verification_code"] is None
    assert row["carrier"] == "ems" and row["last_sequence"] == 1 and row["request_id"] == "rq-1"
    untouched = ("waybill_no", "route_code", "destination_code", "destination_name", "package_code", "package_name",
                 "failure_reason", "finished_at", "purged_at", "label_printed_at", "applicant_token_hash",
                 "applicant_expires_at", "applicant_used_at", "applicant_expiry_notified_at", "proof")  # fmt: skip
    assert {c: row[c] for c in untouched} == dict.fromkeys(untouched)
    assert [(c.position, c.case_no, c.item_name) for c in cases] == [(0, "410106-2018-00107", "个体工商户设立登记")]
    [event] = events
    assert (event.sequence, event.status, event.source) == (1, "pending", "api")
    assert event.occurred_at == event.recorded_at == created
    assert (event.carrier_code, event.carrier_text, event.location, event.dedup_key) == (None, None, None, None)
    [task] = tasks
    assert (task.kind, task.payload, task.attempts, task.request_id) == ("order", {}, 0, "rq-1")
    assert task.due_at == task.created_at == created and task.lease_until is None and task.claim_token is None
    assert (record["client_id"], record["key"], record["shipment_id"], record["status_code"]) == (
        hall.id,
        "columns-1",
        body["id"],
        201,
    )
    assert record["response_body"] == await resp.text() and record["created_at"] == created


# The columns of `shipments` a create leaves NULL: the carrier work, labels, the applicant and the purge fill them.
STARTS_NULL = (
    "waybill_no",
    "route_code",
    "destination_code",
    "destination_name",
    "package_code",
    "package_name",
    "failure_reason",
    "finished_at",
    "purged_at",
    "label_printed_at",
    "handed_at",  # the first pickup sets it
    "delivered_at",  # the first delivery sets it
    "applicant_used_at",
    "applicant_expiry_notified_at",
    "overdue_at",
    "proof",
    "attempts",  # 0, its server default
    "last_failure",
    "resend_of",  # a resend is written in its own transaction (logistics/api/returns.py)
    "resent_as",
    "resolution",
)


def test_the_shipment_row_names_every_column_a_create_fills_in_the_tables_order() -> None:
    # A column added to the table must be added to ShipmentRow or, if a create leaves it NULL, to STARTS_NULL.
    filled = [c.name for c in shipments.columns if c.name not in (*STARTS_NULL, *group_commit.SHIPMENT_DERIVED)]
    assert list(ShipmentRow._fields) == filled


@pytest.mark.parametrize(
    "statement",
    [group_commit._SQLITE_SHIPMENT_ROW, group_commit._SQLITE_SHIPMENTS, group_commit._PG_INSERT],
    ids=["sqlite executemany", "sqlite json_each", "postgresql"],
)
def test_every_writer_inserts_the_rows_fields_then_updated_at_and_last_sequence(statement: str) -> None:
    match = re.search(r"INSERT INTO shipments \(([^)]*)\)", statement)
    assert match is not None
    columns = [name.strip().strip('"') for name in match.group(1).split(",")]
    assert columns == [*ShipmentRow._fields, "updated_at", "last_sequence"]


async def test_an_applicant_choice_stores_its_link_and_queues_no_order(
    api: TestClient, hall: Credentials, db: Database
) -> None:
    body = delivery_body(recipient=None, applicant_choice=True)
    created = await (await api.post("/v1/shipments", json=body, headers=auth(hall))).json()
    async with db.read() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == created["id"]))).one()
        tasks = (await conn.execute(select(outbox).where(outbox.c.shipment_id == created["id"]))).all()
    assert row.status == "awaiting_applicant" and row.recipient is None
    assert row.applicant_token_hash == ids.hash_secret(created["applicant_url"].rsplit("/a/", 1)[1])
    assert (row.applicant_expires_at - row.created_at).days == 7
    assert tasks == []


def _item(client_id: str, *, key: str | None = None) -> NewShipment:
    now = datetime.now(UTC)
    sid = ids.shipment_id()
    shipment = ShipmentRow(
        *(sid, client_id, "delivery", "pending", "上街区市场监督管理局", "综合受理3号窗口", None),
        *(dict(APPLICANT), [], {}, None, None, None, ids.tracking_code(), "ems", None, now, None, None),
    )
    item = NewShipment(
        shipment=shipment,
        cases=[("410106-2018-00095", "食品经营许可证核发"), ("410106-2018-00096", "食品经营许可证变更")],
    )
    if key is not None:
        item.idempotency = IdempotencyClaim(client_id, key, "hash-" + key, f'{{"id": "{sid}"}}')
    return item


async def _created(db: Database, sid: str) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(shipments.c.id).where(shipments.c.id == sid))).first() is not None


async def test_a_row_the_database_refuses_fails_only_its_own_request(db: Database, hall: Credentials) -> None:
    committer = GroupCommitter(db)
    await committer.start()
    try:
        good = [_item(hall.id), _item(hall.id, key="k-1"), _item(hall.id)]
        bad = _item("cli_NO_SUCH_CLIENT")  # breaks the client foreign key, so the batch's insert fails
        results = await asyncio.gather(
            *(committer.submit(i) for i in [good[0], bad, *good[1:]]), return_exceptions=True
        )
    finally:
        await committer.stop()
    assert [r for n, r in enumerate(results) if n != 1] == [Outcome(True)] * 3
    assert isinstance(results[1], Exception) and not isinstance(results[1], DatabaseUnavailable)
    assert [await _created(db, i.shipment.id) for i in good] == [True, True, True]
    assert not await _created(db, bad.shipment.id)
    async with db.read() as conn:
        query = select(shipment_cases.c.position).where(shipment_cases.c.shipment_id == good[1].shipment.id)
        cases = (await conn.execute(query.order_by(shipment_cases.c.position))).scalars().all()
    assert cases == [0, 1]


async def test_one_key_twice_in_a_batch_is_one_shipment_and_a_replay(db: Database, hall: Credentials) -> None:
    committer = GroupCommitter(db)
    await committer.start()
    try:
        first, second = _item(hall.id, key="same"), _item(hall.id, key="same")
        results = await asyncio.gather(committer.submit(first), committer.submit(second))
        third = _item(hall.id, key="same")
        replay = await committer.submit(third)  # in a later batch: found in the database
    finally:
        await committer.stop()
    assert results[0] == Outcome(True)
    assert not results[1].created and results[1].existing is not None
    assert results[1].existing.shipment_id == first.shipment.id
    assert not replay.created and replay.existing is not None
    assert (replay.existing.shipment_id, replay.existing.request_hash) == (first.shipment.id, "hash-same")
    assert replay.existing.status_code == 201
    assert not await _created(db, second.shipment.id) and not await _created(db, third.shipment.id)


async def test_an_unreachable_database_fails_the_waiters_with_unavailable(database_url: str, tmp_path: Any) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'logistics.db'}"
    else:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    db = Database(url)
    committer = GroupCommitter(db)
    await committer.start()
    try:
        with pytest.raises(DatabaseUnavailable):
            await committer.submit(_item("cli_X"))
    finally:
        await committer.stop()
        await db.dispose()


async def test_a_create_while_the_database_is_down_is_a_503(
    api: TestClient, hall: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))).status == 201
    committer = api.server.app[COMMITTER]

    async def down(batch: list[NewShipment]) -> list[Outcome]:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(committer, "_write", down)
    resp = await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert (await resp.json())["type"].endswith("/database-unavailable")


async def test_the_committer_takes_a_new_connection_after_its_own_was_killed(
    api: TestClient, hall: Credentials, db: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL connections only")
    assert (await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))).status == 201
    async with db.write() as conn:
        others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        killed = list((await conn.execute(text(f"SELECT pid {others}"))).scalars())
        await conn.execute(text(f"SELECT pg_terminate_backend(pid) {others}"))

    async def gone() -> bool:  # the backends have exited, so their sockets are closed
        async with db.read() as conn:
            left = await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"), {"p": killed})
            return left.scalar_one() == 0

    await eventually(gone)
    statuses = [(await api.post("/v1/shipments", json=delivery_body(), headers=auth(hall))).status for _ in range(3)]
    assert statuses == [201, 201, 201]


async def test_a_connection_caught_mid_exchange_is_dropped_and_the_batch_is_a_503(db: Database) -> None:
    # Found by the chaos run: at a PostgreSQL shutdown an idle connection read the server's FATAL and was still
    # consuming it when the next batch used it; asyncpg's InternalClientError came out as a 500.
    if db.is_sqlite:
        pytest.skip("PostgreSQL connections only")
    writer = db.batch_writer()
    first = await writer.run(lambda conn: conn.fetchval("SELECT pg_backend_pid()"))

    async def caught_mid_exchange(_conn: Any) -> None:
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")

    try:
        with pytest.raises(DatabaseUnavailable):
            await writer.run(caught_mid_exchange)
        assert await writer.run(lambda conn: conn.fetchval("SELECT pg_backend_pid()")) != first
    finally:
        await writer.close()


async def test_a_nul_character_is_a_422_on_every_database(api: TestClient, hall: Credentials) -> None:
    # PostgreSQL cannot store U+0000: it used to be a 500 there, and it took its whole group commit down.
    resp = await api.post(
        "/v1/shipments", json=delivery_body(recipient={**APPLICANT, "address": "济源路\u00008号"}), headers=auth(hall)
    )
    assert resp.status == 422
    assert (await resp.json())["errors"] == [
        {"field": "recipient.address", "message": "must not contain the character U+0000"}
    ]


async def test_batches_are_counted_in_the_metrics(api: TestClient, hall: Credentials) -> None:
    def count(metrics: str, name: str) -> float:
        return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name))

    before = await (await api.get("/metrics")).text()
    await asyncio.gather(*(api.post("/v1/shipments", json=delivery_body(), headers=auth(hall)) for _ in range(5)))
    after = await (await api.get("/metrics")).text()
    assert (
        count(after, "logistics_group_commit_batch_size_sum") - count(before, "logistics_group_commit_batch_size_sum")
        == 5
    )
    created = 'logistics_http_requests_total{method="POST",route="/v1/shipments",status="201"}'
    assert count(after, created) - count(before, created) == 5


async def test_commits_wake_the_workers_at_most_once_per_interval_and_the_last_is_never_dropped(
    db: Database, hall: Credentials
) -> None:
    committer = GroupCommitter(db, signal_interval=1.0)
    calls: list[float] = []
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_commit() -> None:
        calls.append(loop.time())
        signalled.set()

    committer.on_commit = on_commit
    await committer.start()
    try:
        started = loop.time()
        for _ in range(4):  # four batches, one after the other
            assert (await committer.submit(_item(hall.id))).created
        assert len(calls) == 1 and calls[0] - started < 0.5  # the first at once
        signalled.clear()
        await asyncio.wait_for(signalled.wait(), 5)
        assert len(calls) == 2 and calls[1] - calls[0] >= 0.99  # the rest together, at the interval's end
        # A quiet interval is the behaviour under test: nothing to await but the time passing.
        await asyncio.sleep(calls[1] + 1.05 - loop.time())
        assert (await committer.submit(_item(hall.id))).created  # after a quiet interval: at once again
        assert len(calls) == 3
        committer.signal_interval = 60
        assert (await committer.submit(_item(hall.id))).created
        assert len(calls) == 3
    finally:
        await committer.stop()
    assert len(calls) == 4  # a commit still to announce is announced on stop


def test_a_batch_takes_half_of_a_long_queue_and_all_of_a_short_one(tmp_path: Path) -> None:
    committer = GroupCommitter(Database(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"), max_batch=500, split_at=16)
    assert [committer.batch_size(n) for n in (1, 15, 16, 41, 2000)] == [1, 15, 8, 21, 500]


async def test_forty_waiting_requests_are_committed_in_halves(db: Database, hall: Credentials) -> None:
    def batches() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("logistics_group_commit_batch_size_count") or 0.0
        total = REGISTRY.get_sample_value("logistics_group_commit_batch_size_sum") or 0.0
        return count, total

    committer = GroupCommitter(db, split_at=16)
    await committer.start()
    before = batches()
    try:
        items = [_item(hall.id) for _ in range(40)]
        results = await asyncio.gather(*(committer.submit(i) for i in items))  # all queued before the first batch
    finally:
        await committer.stop()
    after = batches()
    assert results == [Outcome(True)] * 40
    assert (after[0] - before[0], after[1] - before[1]) == (3, 40)  # 20, then 10 and 10
    assert [await _created(db, i.shipment.id) for i in items] == [True] * 40


async def test_a_replay_alone_wakes_no_worker(db: Database, hall: Credentials) -> None:
    committer = GroupCommitter(db, signal_interval=0)
    calls: list[int] = []
    committer.on_commit = lambda: calls.append(1)
    await committer.start()
    try:
        assert (await committer.submit(_item(hall.id, key="once"))).created
        assert not (await committer.submit(_item(hall.id, key="once"))).created
    finally:
        await committer.stop()
    assert calls == [1]


@contextlib.asynccontextmanager
async def _write_lock_held_elsewhere(db: Database) -> AsyncIterator[None]:
    """Another session holds what a batch needs: SQLite's write lock, or on PostgreSQL a lock on the
    shipments table that keeps inserts waiting (a stand-in for a server that stopped answering)."""
    if db.is_sqlite:
        other = sqlite3.connect(make_url(db.url).database or "", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    async with db.engine.connect() as conn:
        await conn.execute(text("BEGIN"))
        await conn.execute(text("LOCK TABLE shipments IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await conn.rollback()


async def test_a_commit_held_up_by_the_database_fails_its_waiters_within_the_commit_timeout(
    db: Database, hall: Credentials
) -> None:
    committer = GroupCommitter(db, commit_timeout=0.5)
    await committer.start()
    try:
        async with _write_lock_held_elsewhere(db):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                await committer.submit(_item(hall.id))
            assert time.monotonic() - started < 5  # not the SQLite busy timeout, not the client's own
    finally:
        await committer.stop()
