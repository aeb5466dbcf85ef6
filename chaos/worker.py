"""``logistics worker`` exactly as production runs it, with one difference: a compressed webhook retry schedule.

The production schedule (5 s, 5 min, 30 min, 2 h, … over days) is right for real receivers, but a chaos run
whose receiver fails 30 % of attempts would then wait hours for its unluckiest deliveries. The schedule is a
runtime service of the worker (``webhook_delivery.SCHEDULE``), not a setting, so this wrapper installs it and then hands
over to the normal CLI: every other line of the worker is the production code path.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from logistics.cli import main
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime
from webhooks import RetrySchedule

SCHEDULE_ENV = "CHAOS_WEBHOOK_SCHEDULE"  # comma-separated seconds, first attempt first


def schedule_from_env() -> RetrySchedule | None:
    raw = os.environ.get(SCHEDULE_ENV, "").strip()
    if not raw:
        return None
    return RetrySchedule(delays=tuple(timedelta(seconds=float(part)) for part in raw.split(",")))


def install(schedule: RetrySchedule) -> None:
    original = webhook_delivery.setup

    def setup(rt: Runtime) -> None:
        original(rt)
        rt.services[webhook_delivery.SCHEDULE] = schedule

    webhook_delivery.setup = setup


if __name__ == "__main__":
    found = schedule_from_env()
    if found is not None:
        install(found)
    sys.exit(main(["worker", *sys.argv[1:]]))
