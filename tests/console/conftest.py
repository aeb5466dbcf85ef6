"""Clerks for the console tests: real staff tokens in the real database, and a client signed in as one."""

from __future__ import annotations

import pytest
from console_support import CIVIL, MARKET, TAX

from logistics.accounts import staff
from logistics.storage.db import Database


@pytest.fixture
async def clerk(db: Database) -> staff.NewStaff:
    return await staff.create(db, "李秀英", "clerk", [MARKET, CIVIL])


@pytest.fixture
async def tax_clerk(db: Database) -> staff.NewStaff:
    return await staff.create(db, "赵磊", "clerk", [TAX])


@pytest.fixture
async def courier(db: Database) -> staff.NewStaff:
    return await staff.create(db, "王建国", "courier", [MARKET])
