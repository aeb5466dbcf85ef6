"""The chaos run's CI variant: 500 shipments through the real processes while the worker is SIGKILLed, Redis is
flushed and restarted, EMS fails 20 % of calls and goes down once, and the webhook receiver fails 30 % of requests
and goes down once (``chaos/run.py`` has the whole story; by hand it runs 10,000).

Runs on SQLite, and on PostgreSQL when LOGISTICS_TEST_POSTGRES_URL is set (in a database of its own). About two
minutes each on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from chaos.run import Plan, run_plan

POSTGRES_URL = os.environ.get("LOGISTICS_TEST_POSTGRES_URL", "")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_chaos_run_keeps_every_promise(backend: str, tmp_path: Path) -> None:
    if backend == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL half skipped: set LOGISTICS_TEST_POSTGRES_URL")
    lines: list[str] = []
    plan = Plan.ci(
        postgres=POSTGRES_URL if backend == "postgresql" else None, work_dir=tmp_path / "chaos", progress=lines.append
    )
    # Its own event loop: the run starts and stops real processes and must not share the tests' loop.
    report = asyncio.run(run_plan(plan))
    print("\n".join(lines), report.text(), sep="\n")  # shown by pytest when the test fails (or with -s)
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    assert report.ok, "\n".join(failed)
