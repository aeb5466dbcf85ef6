"""Staff members for the scan tests: couriers and clerks scoped to departments (real tokens, real database)."""

from __future__ import annotations

import pytest

from logistics.accounts import staff
from logistics.storage.db import Database


@pytest.fixture
async def courier(db: Database) -> staff.NewStaff:
    return await staff.create(db, "王建国", "courier", ["上街区市场监督管理局", "上街区民政局"])


@pytest.fixture
async def clerk(db: Database) -> staff.NewStaff:
    return await staff.create(db, "李秀英", "clerk", ["上街区市场监督管理局"])


@pytest.fixture
async def outsider(db: Database) -> staff.NewStaff:
    return await staff.create(db, "赵磊", "courier", ["二七区税务局"])
