"""Helpers for the browser tests (a unique module name: test folders here are not packages)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def url(api: TestClient, path: str) -> str:
    """The address of ``path`` on the test server (a real socket the browser connects to)."""
    return str(api.make_url(path))


def shot(name: str) -> str:
    return str(ARTIFACTS / f"{name}.png")
