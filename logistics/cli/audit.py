"""`logistics audit access`: who viewed which shipment's personal data on the console, when and from where.

The record is the personal_data_access table; the application log never carries it (it would spread the
link between a clerk and an applicant to every log sink)."""

from __future__ import annotations

import argparse
from typing import Any

from logistics.cli.common import action, arg, emit, since, with_db
from logistics.config import Settings
from logistics.console import queries

VIEW_TEXT = {"shipment": "opened the shipment", "find": "found by phone or name"}


def _text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no views of personal data recorded for this selection"
    return "\n".join(
        f"{r['viewed_at'].isoformat()}  {r['staff_id']}  {r['shipment_id']}  {r['address']}  "
        f"{VIEW_TEXT.get(r['view'], r['view'])}"
        for r in rows
    )


def cmd_access(args: argparse.Namespace, settings: Settings) -> None:
    rows = with_db(
        settings,
        lambda db: queries.access_log(
            db, staff_id=args.staff, shipment_id=args.shipment, since=args.since, limit=args.limit
        ),
    )
    data = [
        {
            "viewed_at": r["viewed_at"].isoformat(),
            "staff_id": r["staff_id"],
            "shipment_id": r["shipment_id"],
            "address": r["address"],
            "view": r["view"],
        }
        for r in rows
    ]
    emit(args, data, _text(rows))


def add_parser(subparsers: Any) -> None:
    """Add `audit …` to the `logistics` command's subcommands."""
    au = subparsers.add_parser("audit", help="the console's record of views of personal data").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    action(
        au,
        "access",
        cmd_access,
        arg("--staff", help="only this staff member (stf_…)"),
        arg("--shipment", help="only this shipment (shp_…)"),
        arg("--since", type=since, help="from this time on (ISO 8601; Beijing time without an offset)"),
        arg("--limit", type=int, default=1000, help="at most this many rows, oldest first (default 1000)"),
        help="who viewed which shipment's personal data, when, from where",
    )
