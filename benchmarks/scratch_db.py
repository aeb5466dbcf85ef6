"""A migrated scratch database for one benchmark run: a SQLite file in a temporary folder, or a database of its
own on the PostgreSQL server given (created, then dropped with its connections)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from logistics.config import Settings, normalise_database_url
from logistics.storage import migrate


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


@contextlib.asynccontextmanager
async def scratch_database(postgres: str | None, folder: Path, prefix: str) -> AsyncIterator[str]:
    """Yields the URL of a fresh, migrated database; ``postgres`` is a server URL, or None for SQLite."""
    if postgres is None:
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        return
    admin = normalise_database_url(postgres)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def scratch_settings(postgres: str | None, redis: str, prefix: str, **extra: Any) -> AsyncIterator[Settings]:
    """Settings for a benchmark's own API: a scratch database (above), a temporary data folder, its own queue."""
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(postgres, Path(tmp), prefix) as url:
            yield Settings(
                data_dir=Path(tmp),
                database_url=url,
                redis_url=redis,
                public_base_url="http://127.0.0.1:8080",
                log_level="WARNING",
                queue_name=f"bench:{uuid.uuid4().hex[:8]}",
                **extra,
            )
