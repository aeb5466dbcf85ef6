"""The figures are at most 60 seconds old: the worker runs the refresh on a schedule never more than
GONGSHI_REFRESH_SECONDS (≤ 60) apart, from its start, once at a time; checked on the schedule, not by waiting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from logistics.config import Settings
from logistics.gongshi import store
from logistics.jobs.worker import build_runtime, create_worker, gongshi_seconds
from logistics.storage.db import Database


def gaps(seconds: set[int]) -> list[int]:
    ordered = sorted(seconds)
    return [b - a for a, b in zip(ordered, [*ordered[1:], ordered[0] + 60], strict=True)]


@pytest.mark.parametrize("step", [1, 7, 13, 30, 45, 59, 60])
def test_the_refresh_runs_at_least_every_setting_seconds(step: int) -> None:
    assert max(gaps(gongshi_seconds(Settings(gongshi_refresh_seconds=step)))) <= step


def test_the_default_refreshes_every_30_seconds() -> None:
    assert gongshi_seconds(Settings()) == {0, 30}


@pytest.mark.parametrize("step", [0, 61, 3600])
def test_a_setting_that_would_break_the_60_second_promise_is_refused(step: int) -> None:
    with pytest.raises(ValidationError):
        Settings(gongshi_refresh_seconds=step)


async def test_the_worker_schedules_the_refresh_and_its_run_brings_the_figures_up_to_date(
    settings: Settings, db: Database
) -> None:
    worker = create_worker(settings, build_runtime(settings, db))
    job = next(j for j in worker.cron_jobs if j.name == "gongshi")
    assert max(gaps(job.second)) <= 60
    assert job.run_at_startup and job.unique and job.minute is None
    before = datetime.now(UTC)
    await job.coroutine({})
    refreshed = await store.refreshed_at(db)
    assert refreshed is not None and refreshed >= before
