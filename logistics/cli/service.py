"""`logistics api|worker|migrate|ems-sim`: the long-running processes production runs, and the schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import sys
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from logistics.cli.common import (
    CliError,
    check_db,
    check_redis,
    ensure_redis,
    halls_file,
    migrate_now,
    require_carrier_secrets,
    run,
    safe_url,
)
from logistics.config import Settings

if TYPE_CHECKING:
    from aiohttp import web


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


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    migrate_now(settings)
    print(f"database is at the latest schema ({safe_url(settings)})")


def cmd_api(args: argparse.Namespace, settings: Settings) -> None:
    from logistics.api.app import create_app

    require_carrier_secrets(settings)
    with halls_file():  # building the app reads it: a bad file stops here, before anything is started
        app = create_app(settings)
    server = ensure_redis(settings)
    try:  # a private Redis started here stops with the command, whatever stops it
        run(check_db(settings))
        try:
            check_redis(settings.redis_url or "")
        except CliError as exc:
            # The API keeps accepting shipments without Redis (work waits in the database): a warning.
            print(f"logistics: warning: {exc}; shipments are still accepted and wait in the database", file=sys.stderr)
        with _listening(settings.host, settings.port, "LOGISTICS_PORT"):
            run_until_signal(_serve(app, settings.host, settings.port))
    finally:
        if server is not None:
            server.stop()


async def _serve(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` until cancelled, then stop as aiohttp's run_app does: stop accepting, finish the requests
    under way, close the app's resources. Signals are ``run_until_signal``'s, like every other command's."""
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


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from logistics.jobs.worker import run_forever

    require_carrier_secrets(settings)
    server = ensure_redis(settings)
    try:
        run(check_db(settings))
        check_redis(settings.redis_url or "")
        run_until_signal(run_forever(settings))
    finally:
        if server is not None:
            server.stop()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_until_signal(coro: Coroutine[Any, Any, Any]) -> None:
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


def clock_speed(text: str) -> float:
    """``--clock-speed``: a number from 1 (real time) up, told as one line, not a traceback."""
    from carriers.simulator.faults import clock_speed as check

    value: float | str = text
    with contextlib.suppress(ValueError):
        value = float(text)  # not a number: the check below refuses the text with its own message
    try:
        speed = check({"speed": value})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert speed is not None
    return speed


def cmd_ems_sim(args: argparse.Namespace, settings: Settings) -> None:
    from carriers.simulator.config import SimConfig
    from carriers.simulator.server import serve

    config = SimConfig(
        sender_no=settings.ems_sender_no,
        authorization=settings.ems_authorization,
        sign_key=settings.ems_sign_key,
        callback_url=args.callback_url or f"{settings.base_url}/carriers/ems/push",
        step_seconds=args.step_seconds if args.step_seconds is not None else settings.ems_sim_step_seconds,
        clock_speed=args.clock_speed,
    )
    port = args.port or settings.ems_sim_port
    with _listening(settings.ems_sim_host, port, "--port or LOGISTICS_EMS_SIM_PORT"):
        run_until_signal(serve(config, settings.ems_sim_host, port))


def add_parser(sub: Any) -> None:
    """Add `api`, `worker`, `migrate` and `ems-sim` to the `logistics` command's subcommands."""
    sub.add_parser("api", help="the HTTP API").set_defaults(fn=cmd_api)
    sub.add_parser("worker", help="the background worker (carrier orders, tracking, labels, webhooks)").set_defaults(
        fn=cmd_worker
    )
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(fn=cmd_migrate)
    sim = sub.add_parser("ems-sim", help="the EMS partner-API simulator")
    sim.add_argument("--port", type=int, help="default: LOGISTICS_EMS_SIM_PORT")
    sim.add_argument("--step-seconds", type=float, help="seconds per tracking step (0: manual clock)")
    sim.add_argument("--callback-url", help="where to push tracking events")
    sim.add_argument(
        "--clock-speed",
        type=clock_speed,
        default=1.0,
        help="simulated seconds per second (door pickups wait for their booked window)",
    )
    sim.set_defaults(fn=cmd_ems_sim)
