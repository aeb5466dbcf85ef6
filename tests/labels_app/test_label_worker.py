"""The `label` task: queued with the waybill, stores the default label and owes a shipment.label_ready webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from labels_app_support import WAYBILL, create, mark_ordered
from sqlalchemy import delete, insert, select, update

from logistics.accounts.clients import Credentials
from logistics.config import Settings
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import clients, label_renders, outbox, utcnow, webhook_deliveries
from logistics.jobs import labels as label_job
from logistics.jobs.carrier import ordered_follow_ups
from logistics.jobs.runner import Runtime, run_task
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database
from logistics.storage.outbox import claim_due


@pytest.fixture
async def rt(settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings=settings, db=db, signal=WorkSignal(None))
    yield runtime
    for service in runtime.services.values():
        await service.close()


@pytest.fixture
async def subscribed(db: Database, hall: Credentials) -> Credentials:
    # emit() only needs a URL on record; nothing is sent in these tests.
    async with db.write() as conn:
        await conn.execute(
            update(clients).where(clients.c.id == hall.id).values(webhook_url="https://sp.sj.gov.cn/hooks/logistics")
        )
    return hall


async def _ordered_with_task(api: TestClient, db: Database, creds: Credentials, rt: Runtime) -> str:
    created = await create(api, creds)
    await mark_ordered(db, created["id"])
    async with db.write() as conn:
        # mark_ordered stands in for the order task, so its row goes; the label task is what the order task
        # would have queued (other hooks' tasks are not this file's business).
        await conn.execute(delete(outbox).where(outbox.c.shipment_id == created["id"], outbox.c.kind == "order"))
        follow_ups = [r for r in ordered_follow_ups(rt, created["id"], None) if r["kind"] == label_job.LABEL_TASK]
        await conn.execute(insert(outbox), follow_ups)
    return created["id"]


async def _run_label_tasks(rt: Runtime) -> None:
    # Only this file's task kind: the webhook task the `ordered` event queued belongs to the webhooks tests.
    for task in await claim_due(rt.db, limit=50, lease_seconds=30):
        if task.kind == label_job.LABEL_TASK:
            await run_task(rt, task)


async def _label_ready(db: Database, shipment_id: str) -> list[dict[str, object]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(webhook_deliveries).where(
                webhook_deliveries.c.shipment_id == shipment_id, webhook_deliveries.c.type == "shipment.label_ready"
            )
        )
        return [dict(r._mapping) for r in rows]


def test_ordering_queues_a_label_task(rt: Runtime) -> None:
    rows = ordered_follow_ups(rt, "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C", "req-1")
    assert [(r["kind"], r["shipment_id"]) for r in rows if r["kind"] == "label"] == [
        ("label", "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C")
    ]


async def test_the_label_task_stores_the_pdf_and_owes_label_ready(
    api: TestClient, db: Database, subscribed: Credentials, rt: Runtime
) -> None:
    rt.settings.label_processes = 1  # as in production: rendered in a process of its own
    sid = await _ordered_with_task(api, db, subscribed, rt)
    await _run_label_tasks(rt)
    async with db.read() as conn:
        stored = (await conn.execute(select(label_renders).where(label_renders.c.shipment_id == sid))).one()
        left = (await conn.execute(select(outbox.c.kind).where(outbox.c.shipment_id == sid))).scalars().all()
    assert (stored.fmt, stored.size) == ("pdf", "100x150")
    assert bytes(stored.body).startswith(b"%PDF")
    ready = await _label_ready(db, sid)
    assert len(ready) == 1
    data = ready[0]["payload"]["data"]  # type: ignore[index]
    assert data["waybill_no"] == WAYBILL and data["label"]["content_hash"] == stored.content_hash
    assert "label" not in left  # the task is done; the webhook task delivers the message


async def test_a_claim_of_label_tasks_gives_each_shipment_its_own_label_and_one_label_ready(
    api: TestClient, db: Database, subscribed: Credentials, rt: Runtime
) -> None:
    ids = [await _ordered_with_task(api, db, subscribed, rt) for _ in range(3)]
    tasks = [t for t in await claim_due(db, limit=50, lease_seconds=30) if t.kind == label_job.LABEL_TASK]
    await label_job.label_batch(rt, tasks)
    async with db.read() as conn:
        stored = dict((await conn.execute(select(label_renders.c.shipment_id, label_renders.c.content_hash))).all())
        left = (await conn.execute(select(outbox.c.id).where(outbox.c.kind == "label"))).scalars().all()
    assert sorted(stored) == sorted(ids) and len(set(stored.values())) == 3  # each its own tracking QR
    for sid in ids:
        (ready,) = await _label_ready(db, sid)
        assert ready["payload"]["data"]["label"]["content_hash"] == stored[sid]  # type: ignore[index]
    assert left == []


async def test_a_task_run_again_after_its_lease_ran_out_renders_and_announces_once(
    api: TestClient, db: Database, subscribed: Credentials, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logistics import label_store

    renders: list[str] = []
    real = label_store.render_one
    monkeypatch.setattr(
        label_store, "render_one", lambda label, *a: renders.append(label.waybill_no) or real(label, *a)
    )
    sid = await _ordered_with_task(api, db, subscribed, rt)
    now = utcnow()
    # A slow worker claims the task, its lease runs out, and a second worker claims the same row.
    (slow,) = [t for t in await claim_due(db, limit=10, lease_seconds=5, now=now) if t.kind == "label"]
    later = now + timedelta(seconds=6)
    (fast,) = [t for t in await claim_due(db, limit=10, lease_seconds=5, now=later) if t.kind == "label"]
    assert slow.id == fast.id and slow.claim_token != fast.claim_token
    await label_job.label(rt, fast)
    await label_job.label(rt, slow)
    assert renders == [WAYBILL]
    assert len(await _label_ready(db, sid)) == 1


async def test_a_cancelled_shipments_label_task_does_nothing(
    api: TestClient, db: Database, subscribed: Credentials, rt: Runtime
) -> None:
    sid = await _ordered_with_task(api, db, subscribed, rt)
    async with db.write() as conn:
        row = await lock_shipment(conn, sid)
        assert row is not None
        await apply_event(conn, row, status="cancelled", source="api")
    await _run_label_tasks(rt)
    assert await _label_ready(db, sid) == []


async def test_a_shipment_delivered_before_its_label_task_ran_still_gets_its_label(
    api: TestClient, db: Database, subscribed: Credentials, rt: Runtime
) -> None:
    # Under load the carrier's events can overtake the label task (found by the chaos run): the parcel was
    # carried, so the label is stored and announced all the same.
    sid = await _ordered_with_task(api, db, subscribed, rt)
    for status in ("picked_up", "in_transit", "out_for_delivery", "delivered"):
        async with db.write() as conn:
            row = await lock_shipment(conn, sid)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push")
    await _run_label_tasks(rt)
    async with db.read() as conn:
        stored = (await conn.execute(select(label_renders.c.fmt).where(label_renders.c.shipment_id == sid))).all()
    assert [r.fmt for r in stored] == ["pdf"]
    assert len(await _label_ready(db, sid)) == 1


def test_renderer_processes_exit_when_their_worker_is_killed() -> None:
    # Found by the chaos run: every SIGKILLed worker left its label renderers running, waiting for work forever.
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import os, time\n"
        "from logistics.jobs.labels import RenderPool\n"
        "pool = RenderPool(1)\n"
        "print(pool.executor.submit(os.getpid).result(), flush=True)\n"
        "time.sleep(60)\n"
    )
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=root, stdout=subprocess.PIPE)
    try:
        assert worker.stdout is not None
        renderer = int(worker.stdout.readline())
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{renderer}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        gone = not Path(f"/proc/{renderer}").exists() or "zombie" in Path(f"/proc/{renderer}/status").read_text()
        if not gone:
            os.kill(renderer, signal.SIGKILL)
        assert gone, "the renderer outlived its worker"
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_renderer_whose_worker_died_while_it_started_exits_too() -> None:
    # The worker can die before a renderer's setup runs; by then the renderer's parent is already init, so the
    # worker's pid must come from the worker (an argument), not from getppid() at setup.
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import time\n"
        "from logistics.jobs.labels import _renderer_setup\n"
        "_renderer_setup(0, 2**22 + 1)\n"  # a pid that is not this process's parent
        "time.sleep(30)\n"
    )
    root = Path(__file__).resolve().parents[2]
    renderer = subprocess.Popen([sys.executable, "-c", script], cwd=root)
    try:
        assert renderer.wait(10) == 0
    finally:
        if renderer.poll() is None:
            renderer.kill()
