"""Migrations run both ways on both databases, and the models match what they create."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from logistics.domain.tables import metadata
from logistics.storage import migrate
from logistics.storage.db import Database


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    await engine.dispose()
    return diff


async def test_models_match_the_migrated_schema(db: Database) -> None:
    assert await _diff(db.url) == []


async def test_downgrade_to_base_and_upgrade_again(db: Database) -> None:
    import asyncio

    await asyncio.to_thread(migrate.downgrade, db.url, "base")
    await migrate.upgrade_async(db.url)
    assert await _diff(db.url) == []
