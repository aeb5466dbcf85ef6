"""What every command group shares: settings, the operator's errors, the database and Redis at hand, and the
one way a command prints its answer (JSON with --json, text otherwise)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from logistics.accounts import clients
from logistics.config import Settings, published_carrier_secrets
from logistics.storage.db import Database, DatabaseUnavailable


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code 2."""


def action(
    group: Any, name: str, fn: Callable[..., Any], *arguments: tuple[tuple[str, ...], dict[str, Any]], help: str = ""
) -> argparse.ArgumentParser:
    """One subcommand: its arguments (made with ``arg``), then ``--json``, run by ``fn``."""
    parser: argparse.ArgumentParser = group.add_parser(name, **({"help": help} if help else {}))
    for flags, options in arguments:
        parser.add_argument(*flags, **options)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(fn=fn)
    return parser


def arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, options


def emit(args: argparse.Namespace, data: Any, text: str | None, *, ensure_ascii: bool = False) -> None:
    """Print a command's answer: ``data`` as one JSON line with --json, else ``text`` (None: nothing)."""
    if args.json:
        print(json.dumps(data, ensure_ascii=ensure_ascii))
    elif text is not None:
        print(text)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"  LOGISTICS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise CliError("invalid configuration:\n" + "\n".join(lines)) from None


def require_carrier_secrets(settings: Settings) -> None:
    """A published carrier key lets anyone forge carrier pushes: the service does not start with one."""
    names = published_carrier_secrets(settings)
    if names:
        raise CliError(
            f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} empty or the published sample value; "
            "set the credentials EMS issued you (only `logistics dev` runs on the simulator's)"
        )


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def database(settings: Settings) -> Database:
    try:
        db = Database(settings.resolved_database_url)
    except DatabaseUnavailable as exc:
        raise CliError(f"cannot open the database ({safe_url(settings)}): {exc}") from None
    try:
        await db.ping(timeout=5)
    except DatabaseUnavailable as exc:
        await db.dispose()
        raise CliError(f"cannot reach the database ({safe_url(settings)}): {exc}") from None
    return db


def safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


async def check_db(settings: Settings) -> None:
    db = await database(settings)
    await db.dispose()


def migrate_now(settings: Settings) -> None:
    from logistics.storage import migrate

    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run(check_db(settings))  # reachability first, for a clear message
    try:
        migrate.upgrade(settings.resolved_database_url)
    except Exception as exc:
        raise CliError(f"migration failed: {str(exc).splitlines()[0][:300]}") from None


def with_db(settings: Settings, fn: Callable[[Database], Coroutine[Any, Any, Any]]) -> Any:
    async def go() -> Any:
        db = await database(settings)
        try:
            return await fn(db)
        except clients.ClientError as exc:
            raise CliError(str(exc)) from None
        except Exception as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                raise CliError("the database has no schema yet: run `logistics migrate` first") from None
            raise
        finally:
            await db.dispose()

    return run(go())


def ensure_redis(settings: Settings) -> Any:
    """Unset LOGISTICS_REDIS_URL → start (or reuse) the private Redis; returns the server to stop, or None."""
    if settings.redis_url:
        return None
    from logistics.redis.private_server import PrivateRedis, RedisStartError

    server = PrivateRedis(settings.data_dir)
    try:
        settings.redis_url = server.start()
    except RedisStartError as exc:
        raise CliError(str(exc)) from None
    return server


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, OSError) as exc:
        raise CliError(f"cannot reach Redis at {url}: {exc}") from None


@contextlib.contextmanager
def halls_file() -> Iterator[None]:
    from logistics.domain.halls import HallsError

    try:
        yield
    except HallsError as exc:
        raise CliError(f"{exc} (LOGISTICS_HALLS_FILE)") from None


def since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO 8601, e.g. 2026-05-09T08:00:00+08:00") from None
    # Operators in the hall think in Beijing time; an offset-less time means that.
    return when if when.tzinfo else when.replace(tzinfo=timezone(timedelta(hours=8)))
