"""The figures are at most 60 seconds old: each worker refreshes them from its own loop, beside arq, whenever
they are REFRESH_SECONDS (30) old, whatever the order queue holds; the page may be cached 15 s more."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from logistics.config import Settings
from logistics.gongshi import store, views
from logistics.jobs import worker as worker_module
from logistics.jobs.worker import gongshi_wait
from logistics.storage.db import Database

from support import eventually

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def test_figures_never_computed_are_due_at_once() -> None:
    assert gongshi_wait(None, NOW) == 0


@pytest.mark.parametrize("age", [30, 31, 600])
def test_figures_a_period_old_are_due_at_once(age: int) -> None:
    assert gongshi_wait(NOW - timedelta(seconds=age), NOW) == 0


def test_figures_another_worker_refreshed_lately_wait_for_the_rest_of_the_period() -> None:
    assert gongshi_wait(NOW - timedelta(seconds=12), NOW) == pytest.approx(18)


def test_a_refresh_stamped_ahead_of_this_workers_clock_waits_no_longer_than_a_period() -> None:
    assert gongshi_wait(NOW + timedelta(minutes=5), NOW) == store.REFRESH_SECONDS


def test_a_period_plus_the_cache_lifetime_leaves_room_for_the_refresh_itself_under_60_seconds() -> None:
    max_age = int(re.search(r"max-age=(\d+)", views.HEADERS["Cache-Control"]).group(1))
    jitter, reload_check = 1, views.CHECK_SECONDS
    assert store.REFRESH_SECONDS + jitter + reload_check + max_age <= 50


class _QueueStartsNothing:
    """An arq worker behind a queue so busy (or so stuck) that it starts no job, a cron job's included."""

    async def async_run(self) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


async def test_the_figures_are_refreshed_while_the_queue_starts_no_job(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "create_worker", lambda *_, **__: _QueueStartsNothing())
    before = datetime.now(UTC)
    running = asyncio.create_task(worker_module.run_forever(settings))
    try:

        async def refreshed() -> datetime | None:
            assert not running.done(), running.exception()
            return await store.refreshed_at(db)

        assert await eventually(refreshed, timeout=15) >= before
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
