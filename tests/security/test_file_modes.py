"""The SQLite database (personal data, webhook secrets) and its directory are private to the service's user."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from logistics.redis.private_server import PrivateRedis
from logistics.storage.db import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def shared_umask() -> Iterator[None]:
    # The usual login umask: files come out world-readable unless the service narrows them itself.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_migrate_creates_a_private_data_dir_and_database(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")} | {"LOGISTICS_DATA_DIR": str(data)}
    result = subprocess.run(
        [sys.executable, "-m", "logistics", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert mode(data) == 0o700
    assert mode(data / "logistics.db") == 0o600
    assert all(mode(p) == 0o600 for p in data.glob("logistics.db*"))


async def test_the_wal_and_shm_files_sqlite_creates_later_are_private(tmp_path: Path, shared_umask: None) -> None:
    path = tmp_path / "halls" / "logistics.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE complaints_probe (text TEXT)"))
            await conn.execute(text("INSERT INTO complaints_probe VALUES ('欧阳娜娜 13803712345')"))
        assert (path.parent / "logistics.db-wal").exists() and (path.parent / "logistics.db-shm").exists()
        modes = {p.name: mode(p) for p in path.parent.iterdir()}
    finally:
        await db.dispose()
    assert modes == {"logistics.db": 0o600, "logistics.db-wal": 0o600, "logistics.db-shm": 0o600}
    assert mode(path.parent) == 0o700


async def test_a_database_left_world_readable_is_narrowed_when_opened(tmp_path: Path, shared_umask: None) -> None:
    path = tmp_path / "logistics.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.dispose()
    assert mode(path) == 0o600


def test_the_private_redis_directory_is_private(tmp_path: Path, shared_umask: None) -> None:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        assert mode(tmp_path / "redis") == 0o700
    finally:
        server.stop()
