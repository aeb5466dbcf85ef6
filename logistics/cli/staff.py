"""`logistics staff create|list|revoke|unlock`: accounts for couriers and hall clerks who scan labels."""

from __future__ import annotations

import argparse
from typing import Any

from logistics.accounts import revocation, staff
from logistics.cli.common import CliError, action, arg, emit, with_db
from logistics.config import Settings


def _with_db(settings: Settings, fn: Any) -> Any:
    try:
        return with_db(settings, fn)
    except staff.StaffError as exc:
        raise CliError(str(exc)) from None


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    departments = [d for d in args.departments.replace("，", ",").split(",")]
    created = _with_db(settings, lambda db: staff.create(db, args.name, args.role, departments))
    m = created.member
    emit(
        args,
        {"id": m.id, "name": m.name, "role": m.role, "departments": list(m.departments), "token": created.token},
        f"staff:       {m.id} ({m.name}, {m.role})\ndepartments: {', '.join(m.departments)}\n"
        f"token:       {created.token}\nThe token is shown only once: sign in on {settings.base_url}/staff",
    )


def _list_text(rows: list[Any]) -> str:
    if not rows:
        return "no staff yet: `logistics staff create --name NAME --role courier --departments DEPT`"
    return "\n".join(
        f"{r['id']}  {r['name']}  {r['role']}  {','.join(r['departments'])}  {r['token_prefix']}…  "
        + ("revoked" if r["revoked_at"] else "active")
        for r in rows
    )


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    rows = _with_db(settings, staff.list_all)
    data = [
        {
            "id": r["id"],
            "name": r["name"],
            "role": r["role"],
            "departments": r["departments"],
            "token_prefix": r["token_prefix"],
            "created_at": r["created_at"].isoformat(),
            "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
        }
        for r in rows
    ]
    emit(args, data, _list_text(rows))


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> None:
    when = _with_db(settings, lambda db: staff.revoke(db, args.id, redis_url=revocation.redis_url(settings)))
    emit(args, {"id": args.id, "revoked_at": when.isoformat()}, f"revoked {args.id}")


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> None:
    sid = _with_db(settings, lambda db: staff.unlock_verification(db, args.shipment))
    emit(args, {"shipment": sid}, f"取件验证码 attempts reset for {sid}")


def add_parser(subparsers: Any) -> None:
    """Add `staff …` to the `logistics` command's subcommands."""
    st = subparsers.add_parser("staff", help="couriers and hall clerks who scan labels").add_subparsers(
        dest="staff_command", required=True, metavar="ACTION"
    )
    action(
        st,
        "create",
        cmd_create,
        arg("--name", required=True),
        arg("--role", required=True, choices=staff.ROLES),
        arg("--departments", required=True, help="departments/halls served, comma-separated"),
        help="a new staff member; prints the sign-in token once",
    )
    action(st, "list", cmd_list)
    action(
        st,
        "revoke",
        cmd_revoke,
        arg("--id", required=True, help="staff id (stf_…)"),
        help="the token stops working in every API process at once",
    )
    action(
        st,
        "unlock",
        cmd_unlock,
        arg("--shipment", required=True, help="shipment id, tracking code or waybill number"),
        help="reset the wrong 取件验证码 attempts of a shipment",
    )
