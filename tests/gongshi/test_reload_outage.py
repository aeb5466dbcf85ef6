"""While the database is away, /gongshi keeps serving what it loaded, and the log says so once per outage
(a warning when it starts, a line when it ends), not once a second with a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from aiohttp import web
from sqlalchemy.exc import OperationalError

from logistics.gongshi import views


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    recovered = asyncio.Event()

    async def reload(_app: web.Application) -> None:
        nonlocal calls
        calls += 1
        if calls <= 6:  # six checks in a row find the database away
            raise OperationalError("SELECT refreshed_at FROM gongshi_state", {}, ConnectionRefusedError(111))
        recovered.set()

    monkeypatch.setattr(views, "reload", reload)
    monkeypatch.setattr(views, "CHECK_SECONDS", 0)
    caplog.set_level(logging.INFO, logger="logistics.gongshi")
    task = asyncio.create_task(views.keep_fresh(web.Application()))
    try:
        await asyncio.wait_for(recovered.wait(), timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    events = [r.getMessage() for r in caplog.records]
    assert events == ["gongshi_reload_failed", "gongshi_reload_recovered"]
    assert not any(r.exc_info for r in caplog.records)
    assert "OperationalError" in caplog.records[0].error
