"""`logistics clients create|list|rotate-key|set-webhook|rotate-secret`: approval systems and their keys."""

from __future__ import annotations

import argparse
from typing import Any

from logistics.accounts import clients, revocation
from logistics.cli.common import CliError, action, arg, emit, with_db
from logistics.config import Settings


def webhook_policy(settings: Settings) -> Any:
    from webhooks import AddressPolicy

    return AddressPolicy(allow_loopback=settings.webhook_allow_loopback, allow_cidrs=settings.webhook_allow_cidrs)


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    creds = with_db(
        settings, lambda db: clients.create(db, args.name, args.webhook_url, policy=webhook_policy(settings))
    )
    emit(
        args,
        {"id": creds.id, "name": creds.name, "api_key": creds.api_key, "webhook_secret": creds.webhook_secret},
        f"client:         {creds.id} ({creds.name})\napi key:        {creds.api_key}\n"
        f"webhook secret: {creds.webhook_secret}\nKeep both: they are shown only once.",
    )


def _list_text(rows: list[Any]) -> str:
    if not rows:
        return "no clients yet: `logistics clients create --name NAME`"
    return "\n".join(f"{r['id']}  {r['name']}  webhook={r['webhook_url'] or '-'}" for r in rows)


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    rows = with_db(settings, clients.list_all)
    data = [
        {"id": r["id"], "name": r["name"], "webhook_url": r["webhook_url"], "created_at": r["created_at"].isoformat()}
        for r in rows
    ]
    emit(args, data, _list_text(rows))


def cmd_rotate_key(args: argparse.Namespace, settings: Settings) -> None:
    url = revocation.redis_url(settings)
    key = with_db(settings, lambda db: clients.rotate_key(db, args.client, redis_url=url))
    emit(args, {"api_key": key}, f"new api key: {key}\nEvery older key is revoked.")


def cmd_set_webhook(args: argparse.Namespace, settings: Settings) -> None:
    if args.url is None and not args.enable:
        raise CliError("give --url, --enable or both")
    endpoint = with_db(
        settings,
        lambda db: clients.set_webhook(
            db, args.client, args.url, enable=args.enable or args.url is not None, policy=webhook_policy(settings)
        ),
    )
    state = "disabled" if endpoint.disabled_at else "enabled"
    text = f"webhook: {endpoint.url or '-'} ({state})"
    if endpoint.replayed:
        text += f"\n{endpoint.replayed} deliveries skipped while disabled are queued again"
    data = {
        "client": endpoint.client_id,
        "webhook_url": endpoint.url,
        "disabled_at": endpoint.disabled_at.isoformat() if endpoint.disabled_at else None,
        "replayed": endpoint.replayed,
    }
    # This answer has always escaped non-ASCII (an IDN or a Chinese path in the URL): scripts may compare it.
    emit(args, data, text, ensure_ascii=True)


def cmd_rotate_secret(args: argparse.Namespace, settings: Settings) -> None:
    secret = with_db(settings, lambda db: clients.rotate_secret(db, args.client))
    hours = int(clients.SECRET_OVERLAP.total_seconds() // 3600)
    emit(
        args,
        {"webhook_secret": secret, "previous_valid_hours": hours},
        f"new webhook secret: {secret}\nThe previous secret keeps signing alongside it for {hours} h.",
    )


def add_parser(sub: Any) -> None:
    """Add `clients …` to the `logistics` command's subcommands."""
    cl = sub.add_parser("clients", help="approval systems and their API keys").add_subparsers(
        dest="clients_command", required=True, metavar="ACTION"
    )
    client = arg("--client", required=True, help="client id or name")
    action(
        cl,
        "create",
        cmd_create,
        arg("--name", required=True),
        arg("--webhook-url"),
        help="a new client with an API key and a webhook secret",
    )
    action(cl, "list", cmd_list)
    action(cl, "rotate-key", cmd_rotate_key, client, help="revoke the client's keys and issue a new one")
    action(
        cl,
        "set-webhook",
        cmd_set_webhook,
        client,
        arg("--url", help="absolute http(s) URL of the approval system's receiver"),
        arg("--enable", action="store_true", help="re-enable a disabled endpoint and send what it skipped"),
        help="set the webhook URL; also re-enables a disabled endpoint",
    )
    action(
        cl, "rotate-secret", cmd_rotate_secret, client, help="new webhook secret; the old one keeps signing for 24 h"
    )
