"""`logistics dev`: the whole service on one machine with nothing configured.

One process tree: a private Redis, then the EMS simulator, the API and the worker as child processes (the
same commands production runs), restarted if they die, all stopped on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from logistics.accounts import clients
from logistics.cli.common import CliError, ensure_redis, halls_file, migrate_now, with_db
from logistics.config import Settings, fresh_carrier_secrets, published_carrier_secrets

CHILDREN = ("ems-sim", "api", "worker")
# A child that exits with 2 (CliError: the operator's to fix) this soon after it started failed to start.
STARTUP_SECONDS = 30.0


def _demo_credentials(settings: Settings) -> dict[str, Any]:
    """The demo client's key lives in the data dir so each start can print it; real clients' keys never do."""
    path = settings.data_dir / "demo-client.json"
    if path.exists():
        return json.loads(path.read_text())
    existing = with_db(settings, clients.list_all)
    name = "演示审批系统 (demo)"
    if any(r["name"] == name for r in existing):
        key = with_db(settings, lambda db: clients.rotate_key(db, name))
        client = next(r for r in existing if r["name"] == name)
        creds = {"id": client["id"], "api_key": key, "webhook_secret": client["webhook_secret"]}
    else:
        made = with_db(settings, lambda db: clients.create(db, name))
        creds = {"id": made.id, "api_key": made.api_key, "webhook_secret": made.webhook_secret}
    path.write_text(json.dumps(creds))
    path.chmod(0o600)
    return creds


def _banner(settings: Settings, creds: dict[str, Any]) -> str:
    base = settings.base_url
    return f"""
  政务寄递 dispatch service — embedded mode
  API        {base}        docs {base}/docs
  database   {settings.resolved_database_url}
  redis      {settings.redis_url} (private)
  EMS sim    {settings.ems_url} (parcels move every {settings.ems_sim_step_seconds:g}s)

  demo client      {creds["id"]}
  API key          {creds["api_key"]}
  webhook secret   {creds["webhook_secret"]}

  Try:  curl -s -H "Authorization: Bearer {creds["api_key"]}" {base}/v1/shipments
"""


def run(settings: Settings) -> None:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data_dir = settings.data_dir.resolve()
    redis_server = ensure_redis(settings)
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        migrate_now(settings)
        creds = _demo_credentials(settings)
        env = {
            **os.environ,
            "LOGISTICS_DATA_DIR": str(settings.data_dir),
            "LOGISTICS_REDIS_URL": settings.redis_url or "",
            "LOGISTICS_WEBHOOK_ALLOW_LOOPBACK": "true",  # so a receiver on this machine can be tried
            "LOGISTICS_EMS_SIM_STEP_SECONDS": str(settings.ems_sim_step_seconds),
            # The simulator and the service share credentials made for this run, never the published ones,
            # so that dev needs no configuration and the api and worker start as they would in production.
            **{k: v for k, v in fresh_carrier_secrets().items() if k in published_carrier_secrets(settings)},
        }
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        started: dict[str, float] = {}
        for name in CHILDREN:
            children[name], started[name] = _spawn(name, env), time.monotonic()
        print(_banner(settings, creds), flush=True)
        restarts: dict[str, float] = {}
        while not stopping:
            time.sleep(0.5)
            for name, proc in list(children.items()):
                if proc.poll() is not None and not stopping:
                    if proc.returncode == 2 and time.monotonic() - started[name] < STARTUP_SECONDS:
                        # It printed a problem for the operator (a port in use, say): starting it again
                        # would only print it again, forever.
                        raise CliError(f"dev: {name} could not start (its message is above)")
                    # A crash loop should not spin: wait a little longer each time within a minute.
                    delay = 1.0 if time.monotonic() - restarts.get(name, 0) > 60 else 5.0
                    print(f"logistics dev: {name} exited with {proc.returncode}; restarting", file=sys.stderr)
                    time.sleep(delay)
                    restarts[name] = time.monotonic()
                    children[name], started[name] = _spawn(name, env), time.monotonic()
    except CliError:
        raise
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if redis_server is not None:
            redis_server.stop()
        print("logistics dev: stopped", file=sys.stderr)


def _spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "logistics", command], env=env, cwd=Path.cwd())


def cmd_dev(args: argparse.Namespace, settings: Settings) -> None:
    from logistics.domain.halls import load_halls

    with halls_file():  # checked here too: the API is a child of dev, and its message would come too late
        load_halls(settings.halls_file)
    run(settings)


def add_parser(sub: Any) -> None:
    """Add `dev` to the `logistics` command's subcommands."""
    sub.add_parser("dev", help="everything on embedded defaults: migrate, API, worker, EMS simulator").set_defaults(
        fn=cmd_dev
    )
