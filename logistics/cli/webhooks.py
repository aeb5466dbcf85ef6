"""`logistics webhooks redeliver`: send deliveries again under the same webhook-id."""

from __future__ import annotations

import argparse
from typing import Any

from logistics.accounts import clients
from logistics.cli.common import CliError, emit, since, with_db
from logistics.config import Settings


def cmd_redeliver(args: argparse.Namespace, settings: Settings) -> None:
    if args.since is None and args.id is None:
        raise CliError("give --id ID, or --since ISO-TIME for every failed or skipped delivery since then")
    queued = with_db(settings, lambda db: clients.redeliver(db, args.client, since=args.since, delivery_id=args.id))
    emit(args, {"queued": queued}, f"{len(queued)} deliveries queued again (same webhook-id)")


def add_parser(sub: Any) -> None:
    """Add `webhooks redeliver` to the `logistics` command's subcommands."""
    wh = sub.add_parser("webhooks", help="webhook deliveries").add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    red = wh.add_parser("redeliver", help="send deliveries again under the same webhook-id")
    red.add_argument("--client", required=True, help="client id or name")
    red.add_argument("--since", type=since, help="every failed or skipped delivery created since (ISO 8601)")
    red.add_argument("--id", help="one delivery (msg_…), whatever its state")
    red.add_argument("--json", action="store_true")
    red.set_defaults(fn=cmd_redeliver)
