"""The `logistics` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from logistics import logs
from logistics.accounts import clients
from logistics.config import Settings, published_carrier_secrets
from logistics.storage.db import Database, DatabaseUnavailable

if TYPE_CHECKING:
    from aiohttp import web


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code 2."""


@contextlib.contextmanager
def _listening(host: str, port: int, setting: str) -> Iterator[None]:
    """A port that cannot be bound is the operator's to fix: one line naming the setting, not a traceback."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        reason = os.strerror(exc.errno).lower()
        raise CliError(f"cannot listen on {host}:{port} ({reason}); choose another with {setting}") from None


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


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def _database(settings: Settings) -> Database:
    try:
        db = Database(settings.resolved_database_url)
    except DatabaseUnavailable as exc:
        raise CliError(f"cannot open the database ({_safe_url(settings)}): {exc}") from None
    try:
        await db.ping(timeout=5)
    except DatabaseUnavailable as exc:
        await db.dispose()
        raise CliError(f"cannot reach the database ({_safe_url(settings)}): {exc}") from None
    return db


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def migrate_now(settings: Settings) -> None:
    from logistics.storage import migrate

    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _run(_check_db(settings))  # reachability first, for a clear message
    try:
        migrate.upgrade(settings.resolved_database_url)
    except Exception as exc:
        raise CliError(f"migration failed: {str(exc).splitlines()[0][:300]}") from None


def _with_db(settings: Settings, fn: Callable[[Database], Coroutine[Any, Any, Any]]) -> Any:
    async def go() -> Any:
        db = await _database(settings)
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

    return _run(go())


def _ensure_redis(settings: Settings) -> Any:
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


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, OSError) as exc:
        raise CliError(f"cannot reach Redis at {url}: {exc}") from None


# Commands


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    migrate_now(settings)
    print(f"database is at the latest schema ({_safe_url(settings)})")


def cmd_api(args: argparse.Namespace, settings: Settings) -> None:
    from logistics.api.app import create_app

    require_carrier_secrets(settings)
    with _halls_file():  # building the app reads it: a bad file stops here, before anything is started
        app = create_app(settings)
    server = _ensure_redis(settings)
    _run(_check_db(settings))
    try:
        _check_redis(settings.redis_url or "")
    except CliError as exc:
        # The API keeps accepting shipments without Redis (work waits in the database), so this is a warning.
        print(f"logistics: warning: {exc}; shipments are still accepted and wait in the database", file=sys.stderr)
    try:
        with _listening(settings.host, settings.port, "LOGISTICS_PORT"):
            _run_until_signal(_serve(app, settings.host, settings.port))
    finally:
        if server is not None:
            server.stop()


async def _serve(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` until cancelled, then stop as aiohttp's run_app does: stop accepting, finish the requests
    under way, close the app's resources. Signals are ``_run_until_signal``'s, like every other command's."""
    from aiohttp import web

    from logistics.api.server import AppRunner

    # aiohttp's own access lines are off: the app logs one per request itself (logs.access).
    runner = AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=75.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def _halls_file() -> Iterator[None]:
    from logistics.domain.halls import HallsError

    try:
        yield
    except HallsError as exc:
        raise CliError(f"{exc} (LOGISTICS_HALLS_FILE)") from None


async def _check_db(settings: Settings) -> None:
    db = await _database(settings)
    await db.dispose()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from logistics.jobs.worker import run_forever

    require_carrier_secrets(settings)
    server = _ensure_redis(settings)
    _run(_check_db(settings))
    _check_redis(settings.redis_url or "")
    try:
        _run_until_signal(run_forever(settings))
    finally:
        if server is not None:
            server.stop()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _run_until_signal(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` until SIGINT or SIGTERM cancels it, and let it clean up.

    Ctrl-C reaches every process of the terminal's group, and `logistics dev` then sends its children SIGTERM
    as well: the first signal starts the shutdown, and later ones are ignored for the rest of the process, so
    that none cuts the cleanup short (the database, the label renderers) or kills it on its way out.
    """

    async def main() -> None:
        task = asyncio.create_task(coro)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)
            task.cancel()

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())


def cmd_ems_sim(args: argparse.Namespace, settings: Settings) -> None:
    from carriers.simulator.config import SimConfig
    from carriers.simulator.server import serve

    config = SimConfig(
        sender_no=settings.ems_sender_no,
        authorization=settings.ems_authorization,
        sign_key=settings.ems_sign_key,
        callback_url=args.callback_url or f"{settings.base_url}/carriers/ems/push",
        step_seconds=args.step_seconds if args.step_seconds is not None else settings.ems_sim_step_seconds,
    )
    port = args.port or settings.ems_sim_port
    with _listening(settings.ems_sim_host, port, "--port or LOGISTICS_EMS_SIM_PORT"):
        _run_until_signal(serve(config, settings.ems_sim_host, port))


def cmd_clients_create(args: argparse.Namespace, settings: Settings) -> None:
    creds = _with_db(
        settings, lambda db: clients.create(db, args.name, args.webhook_url, policy=_webhook_policy(settings))
    )
    if args.json:
        print(
            json.dumps(
                {"id": creds.id, "name": creds.name, "api_key": creds.api_key, "webhook_secret": creds.webhook_secret},
                ensure_ascii=False,
            )
        )
    else:
        print(
            f"client:         {creds.id} ({creds.name})\napi key:        {creds.api_key}\n"
            f"webhook secret: {creds.webhook_secret}\nKeep both: they are shown only once."
        )


def cmd_clients_list(args: argparse.Namespace, settings: Settings) -> None:
    rows = _with_db(settings, clients.list_all)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": r["id"],
                        "name": r["name"],
                        "webhook_url": r["webhook_url"],
                        "created_at": r["created_at"].isoformat(),
                    }
                    for r in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    if not rows:
        print("no clients yet: `logistics clients create --name NAME`")
    for r in rows:
        print(f"{r['id']}  {r['name']}  webhook={r['webhook_url'] or '-'}")


def redis_url(settings: Settings) -> str:
    from logistics.accounts.revocation import redis_url as url

    return url(settings)


def cmd_clients_rotate_key(args: argparse.Namespace, settings: Settings) -> None:
    key = _with_db(settings, lambda db: clients.rotate_key(db, args.client, redis_url=redis_url(settings)))
    print(json.dumps({"api_key": key}) if args.json else f"new api key: {key}\nEvery older key is revoked.")


def _webhook_policy(settings: Settings) -> Any:
    from webhooks import AddressPolicy

    return AddressPolicy(allow_loopback=settings.webhook_allow_loopback, allow_cidrs=settings.webhook_allow_cidrs)


def cmd_clients_set_webhook(args: argparse.Namespace, settings: Settings) -> None:
    if args.url is None and not args.enable:
        raise CliError("give --url, --enable or both")
    endpoint = _with_db(
        settings,
        lambda db: clients.set_webhook(
            db, args.client, args.url, enable=args.enable or args.url is not None, policy=_webhook_policy(settings)
        ),
    )
    if args.json:
        print(
            json.dumps(
                {
                    "client": endpoint.client_id,
                    "webhook_url": endpoint.url,
                    "disabled_at": endpoint.disabled_at.isoformat() if endpoint.disabled_at else None,
                    "replayed": endpoint.replayed,
                }
            )
        )
        return
    state = "disabled" if endpoint.disabled_at else "enabled"
    print(f"webhook: {endpoint.url or '-'} ({state})")
    if endpoint.replayed:
        print(f"{endpoint.replayed} deliveries skipped while disabled are queued again")


def cmd_clients_rotate_secret(args: argparse.Namespace, settings: Settings) -> None:
    secret = _with_db(settings, lambda db: clients.rotate_secret(db, args.client))
    hours = int(clients.SECRET_OVERLAP.total_seconds() // 3600)
    if args.json:
        print(json.dumps({"webhook_secret": secret, "previous_valid_hours": hours}))
    else:
        print(f"new webhook secret: {secret}\nThe previous secret keeps signing alongside it for {hours} h.")


def _since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO 8601, e.g. 2026-05-09T08:00:00+08:00") from None
    # Operators in the hall think in Beijing time; an offset-less time means that.
    return when if when.tzinfo else when.replace(tzinfo=timezone(timedelta(hours=8)))


def cmd_webhooks_redeliver(args: argparse.Namespace, settings: Settings) -> None:
    if args.since is None and args.id is None:
        raise CliError("give --id ID, or --since ISO-TIME for every failed or skipped delivery since then")
    queued = _with_db(settings, lambda db: clients.redeliver(db, args.client, since=args.since, delivery_id=args.id))
    if args.json:
        print(json.dumps({"queued": queued}))
    else:
        print(f"{len(queued)} deliveries queued again (same webhook-id)")


def cmd_dev(args: argparse.Namespace, settings: Settings) -> None:
    from logistics.cli import dev
    from logistics.domain.halls import load_halls

    with _halls_file():  # checked here too: the API is a child of dev, and its message would come too late
        load_halls(settings.halls_file)
    dev.run(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logistics", description="政务寄递 courier integration service")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("dev", help="everything on embedded defaults: migrate, API, worker, EMS simulator").set_defaults(
        fn=cmd_dev
    )
    sub.add_parser("api", help="the HTTP API").set_defaults(fn=cmd_api)
    sub.add_parser("worker", help="the background worker (carrier orders, tracking, labels, webhooks)").set_defaults(
        fn=cmd_worker
    )
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(fn=cmd_migrate)
    sim = sub.add_parser("ems-sim", help="the EMS partner-API simulator")
    sim.add_argument("--port", type=int, help="default: LOGISTICS_EMS_SIM_PORT")
    sim.add_argument("--step-seconds", type=float, help="seconds per tracking step (0: manual clock)")
    sim.add_argument("--callback-url", help="where to push tracking events")
    sim.set_defaults(fn=cmd_ems_sim)

    cl = sub.add_parser("clients", help="approval systems and their API keys").add_subparsers(
        dest="clients_command", required=True, metavar="ACTION"
    )
    create = cl.add_parser("create", help="a new client with an API key and a webhook secret")
    create.add_argument("--name", required=True)
    create.add_argument("--webhook-url")
    create.add_argument("--json", action="store_true")
    create.set_defaults(fn=cmd_clients_create)
    lst = cl.add_parser("list")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(fn=cmd_clients_list)
    rot = cl.add_parser("rotate-key", help="revoke the client's keys and issue a new one")
    rot.add_argument("--client", required=True, help="client id or name")
    rot.add_argument("--json", action="store_true")
    rot.set_defaults(fn=cmd_clients_rotate_key)
    hook = cl.add_parser("set-webhook", help="set the webhook URL; also re-enables a disabled endpoint")
    hook.add_argument("--client", required=True, help="client id or name")
    hook.add_argument("--url", help="absolute http(s) URL of the approval system's receiver")
    hook.add_argument("--enable", action="store_true", help="re-enable a disabled endpoint and send what it skipped")
    hook.add_argument("--json", action="store_true")
    hook.set_defaults(fn=cmd_clients_set_webhook)
    sec = cl.add_parser("rotate-secret", help="new webhook secret; the old one keeps signing for 24 h")
    sec.add_argument("--client", required=True, help="client id or name")
    sec.add_argument("--json", action="store_true")
    sec.set_defaults(fn=cmd_clients_rotate_secret)

    wh = sub.add_parser("webhooks", help="webhook deliveries").add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    red = wh.add_parser("redeliver", help="send deliveries again under the same webhook-id")
    red.add_argument("--client", required=True, help="client id or name")
    red.add_argument("--since", type=_since, help="every failed or skipped delivery created since (ISO 8601)")
    red.add_argument("--id", help="one delivery (msg_…), whatever its state")
    red.add_argument("--json", action="store_true")
    red.set_defaults(fn=cmd_webhooks_redeliver)
    from logistics.cli import labels as cli_labels  # here, not at the top: cli_labels imports this module

    cli_labels.add_parser(sub)
    from logistics.cli import staff as cli_staff

    cli_staff.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:
        # Run as the program: everything it writes (the SQLite files, the demo credentials, the private Redis's
        # files) holds personal data or secrets, readable by its own user only. A caller passing argv (tests,
        # wrappers) keeps its own umask; the database files are narrowed where they are opened anyway.
        os.umask(0o077)
    try:
        settings = load_settings()
        logs.setup(settings.log_level, settings.log_format)
        args.fn(args, settings)
    except CliError as exc:
        print(f"logistics: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
