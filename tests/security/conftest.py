"""Fixtures for the security tests: a hall with data worth stealing, another hall, and staff in and out of scope."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from security_support import World, build_world

from logistics.accounts import clients
from logistics.storage.db import Database


@pytest.fixture
async def world(api: TestClient, db: Database, hall: clients.Credentials, other_hall: clients.Credentials) -> World:
    return await build_world(api, db, hall, other_hall)
