"""Clerks for the 好差评 tests: real staff tokens in the real database."""

from __future__ import annotations

import pytest
from ratings_support import MARKET, TAX

from logistics.accounts import staff
from logistics.storage.db import Database


@pytest.fixture
async def clerk(db: Database) -> staff.NewStaff:
    return await staff.create(db, "李秀英", "clerk", [MARKET])


@pytest.fixture
async def tax_clerk(db: Database) -> staff.NewStaff:
    return await staff.create(db, "赵磊", "clerk", [TAX])
