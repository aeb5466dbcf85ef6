"""The ``label`` task: when a shipment is ordered, render and store its default label (PDF, 100 × 150) and owe
the client a ``shipment.label_ready`` webhook.

Safe to run twice: rendering is cached by content (a second run finds the stored label and renders nothing),
and the webhook is written in the transaction that deletes the task, only when that delete succeeds, so a
run that lost its lease to another worker commits no second webhook.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy import select

from labels import DEFAULT_SIZE
from logistics.domain.events import emit_label_ready
from logistics.domain.statuses import FINAL
from logistics.domain.tables import shipments
from logistics.jobs.carrier import ORDERED_HOOKS
from logistics.jobs.runner import Runtime, handles, handles_batch, in_lane
from logistics.label_store import get_rendered_many
from logistics.storage.outbox import Task, finish_many, task_row

log = logging.getLogger("logistics.jobs")

LABEL_TASK = "label"
NOT_CARRIED = FINAL - {"delivered", "returned"}
LABEL_FORMAT = "pdf"
# Renderer processes run at a lower CPU priority: on a busy machine the API and the carrier work come first,
# labels are printed later.
RENDER_NICENESS = 10


def label_follow_up(rt: Runtime, shipment_id: str, request_id: str | None) -> dict[str, Any]:
    """An ordered hook: the label task is written in the transaction that stores the waybill."""
    return task_row(LABEL_TASK, shipment_id, request_id=request_id)


if label_follow_up not in ORDERED_HOOKS:  # a re-import (tests reload modules) must not add a second task
    ORDERED_HOOKS.append(label_follow_up)


def _renderer_setup(niceness: int, parent: int) -> None:
    """In each renderer process: lower priority, deaf to Ctrl-C, and exit once the worker is gone.

    Ctrl-C signals the terminal's whole process group, renderers included: a renderer that took it would die
    with a traceback mid-read of its queue and break the pool under the worker. The worker stops them, in
    order, when it stops itself. A SIGKILLed worker cannot shut its pool down, and the renderers would wait for work
    forever (each sibling holds the queue's write end, so no EOF ever comes) and pile up, one set per kill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(niceness)
    # The worker's pid comes from the worker itself: read here, it may already be init's when the worker died
    # while this process was starting.

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class RenderPool:
    """Processes that render labels, apart from the worker's event loop (PDF rendering is pure CPU)."""

    def __init__(self, processes: int) -> None:
        # spawn, not fork: the worker has threads and open connections that a forked child must not inherit.
        self.executor = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_renderer_setup,
            initargs=(RENDER_NICENESS, os.getpid()),
        )

    async def close(self) -> None:
        # Waiting (off the event loop) ends the renderer processes while the worker still runs: once it has
        # stopped, none is left and their queues are released.
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)


def _executor(rt: Runtime) -> ProcessPoolExecutor | None:
    if rt.settings.label_processes <= 0:
        return None
    pool = rt.services.get("label_pool")
    if pool is None:
        pool = rt.services["label_pool"] = RenderPool(rt.settings.label_processes)
    return pool.executor


# Labels run in a lane of their own (see runner.LANES), a claim at a time: rendered together and stored in
# three writes per claim, whatever its size. Each write waits its turn at the database behind the worker's
# other batches (on SQLite, seconds under load), so claims are large: small claims store only a few labels a
# second. 64 render in well under a second per renderer process.
in_lane(LABEL_TASK, lambda settings: 64 * max(1, settings.label_processes))


def _carried(row: dict[str, Any] | None) -> bool:
    # Shipments that end without being carried (cancelled before pickup, failed) need no label. One already
    # delivered or returned was carried: under load its events can overtake this task, and it still gets its
    # label and label_ready.
    return row is not None and bool(row["waybill_no"]) and row["status"] not in NOT_CARRIED


@handles_batch(LABEL_TASK)
async def label_batch(rt: Runtime, tasks: list[Task]) -> None:
    ids = [t.shipment_id for t in tasks if t.shipment_id]
    async with rt.db.read() as conn:
        rows = {r.id: dict(r._mapping) for r in await conn.execute(select(shipments).where(shipments.c.id.in_(ids)))}
    wanted = [rows[t.shipment_id] for t in tasks if _carried(rows.get(t.shipment_id or ""))]
    try:
        rendered = await get_rendered_many(
            rt.db, rt.settings, wanted, LABEL_FORMAT, DEFAULT_SIZE, executor=_executor(rt)
        )
    except BrokenProcessPool:
        rt.services.pop("label_pool", None)  # a renderer process died: the next claim starts a fresh pool
        raise
    async with rt.db.write() as conn:
        # The label_ready webhook only with our own delete: a claim that lost its lease to another worker
        # commits no second webhook.
        finished = await finish_many(conn, tasks)
        ours = {t.shipment_id for t in tasks if t.id in finished}
        await emit_label_ready(
            conn,
            {
                sid: {"label": {"format": LABEL_FORMAT, "size": DEFAULT_SIZE, "content_hash": label.content_hash}}
                for sid, label in rendered.items()
                if sid in ours
            },
        )
    for sid, label in rendered.items():
        log.info("label_stored", extra={"shipment_id": sid, "rendered": label.rendered})


@handles(LABEL_TASK)
async def label(rt: Runtime, task: Task) -> None:
    await label_batch(rt, [task])
