"""Real headless Chromium (Debian's, installed by scripts/browser-setup) driven by Playwright.

Without Chromium or Playwright these tests skip, and the run's summary says why in yellow: a missing
browser must never look like a pass. They use SQLite only: the pages' database work is covered on both
databases by tests/people.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import ARTIFACTS

from logistics.storage import migrate

CHROMIUM = os.environ.get("LOGISTICS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_skipped: list[str] = []


def _missing() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and shutil.which(CHROMIUM) is None:
        return f"browser tests skipped: no Chromium at {CHROMIUM} (run scripts/browser-setup as root)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "browser tests skipped: the playwright package is missing (pip install -e '.[test]')"
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_line(f"NOTE: {_skipped[0]}", yellow=True, bold=True)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'logistics.db'}"
    migrate.upgrade(url)
    return url


@contextlib.asynccontextmanager
async def _context(**options: Any) -> AsyncIterator[Any]:
    """A fresh Chromium and one browser context with ``options``; skips when Chromium or the font is missing."""
    reason = _missing()
    if reason is not None:
        _skipped.append(reason)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(locale="zh-CN", **options)
        try:
            yield context
        finally:
            await context.close()
            await browser.close()


@pytest.fixture
async def browser_context() -> AsyncIterator[Any]:
    # A phone: the pages are built for one.
    async with _context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True) as context:
        yield context


@pytest.fixture
async def page(browser_context: Any) -> Any:
    return await browser_context.new_page()


@pytest.fixture
async def desktop_page() -> AsyncIterator[Any]:
    """A clerk's PC at the hall (the console is desktop-first): 1440×900."""
    async with _context(viewport={"width": 1440, "height": 900}) as context:
        yield await context.new_page()
