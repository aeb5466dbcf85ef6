"""The figures are at most 60 seconds old: the worker runs the refresh on a schedule never more than
REFRESH_SECONDS (30) apart, from its start, once at a time, and the page may be cached 15 s more; checked on the
schedule, not by waiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from logistics.config import Settings
from logistics.gongshi import store, views
from logistics.jobs.worker import build_runtime, create_worker, gongshi_seconds
from logistics.storage.db import Database


def gaps(seconds: set[int]) -> list[int]:
    ordered = sorted(seconds)
    return [b - a for a, b in zip(ordered, [*ordered[1:], ordered[0] + 60], strict=True)]


@pytest.mark.parametrize("step", [1, 7, 13, 30, 45, 59, 60, 600])
def test_the_refresh_runs_at_least_every_step_seconds_and_never_less_than_once_a_minute(step: int) -> None:
    assert max(gaps(gongshi_seconds(step))) <= min(step, 60)


def test_a_refresh_plus_the_cache_lifetime_stays_under_60_seconds() -> None:
    assert gongshi_seconds() == {0, 30}
    max_age = int(re.search(r"max-age=(\d+)", views.HEADERS["Cache-Control"]).group(1))
    assert max(gaps(gongshi_seconds())) + max_age < 60


async def test_the_worker_schedules_the_refresh_and_its_run_brings_the_figures_up_to_date(
    settings: Settings, db: Database
) -> None:
    worker = create_worker(settings, build_runtime(settings, db))
    job = next(j for j in worker.cron_jobs if j.name == "gongshi")
    assert job.second == gongshi_seconds()
    assert job.run_at_startup and job.unique and job.minute is None and job.hour is None
    before = datetime.now(UTC)
    await job.coroutine({})
    refreshed = await store.refreshed_at(db)
    assert refreshed is not None and refreshed >= before
