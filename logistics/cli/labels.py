"""`logistics labels print`: many labels into one PDF or ZPL file, for the hall's printer.

Selection by ids (in the order given), by case number, or by creation time; shipments without a waybill
cannot have a label: named ids that lack one are an error, matches of --case/--since without one are skipped
and counted. The labels are drawn straight into a temporary file next to the target (never held in memory
whole, however many there are), which is renamed at the end, so a failed run never leaves half a PDF where the
printer spool looks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select

from labels import DEFAULT_DPI, DEFAULT_SIZE, SIZES
from logistics.accounts import clients
from logistics.cli.common import CliError, since, with_db
from logistics.config import Settings
from logistics.domain.tables import shipment_cases, shipments
from logistics.label_store import BATCH_FORMATS, DPIS, prepare_batch, write_batch
from logistics.storage.db import Database


class Progress:
    """A one-line text bar on stderr (redrawn with \\r), throttled so that drawing never slows rendering."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self._last = 0.0
        self._lock = threading.Lock()  # called from the rendering thread

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self._last < self.min_interval:
            return
        with self._lock:
            self._last = now
            filled = self.WIDTH * done // max(1, self.total)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            end = "\n" if done >= self.total else ""
            self.stream.write(f"\rrendering [{bar}] {done}/{self.total}{end}")
            self.stream.flush()


def _ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give one or more shipment ids, separated by commas")
    return ids


async def select_rows(db: Database, args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """The shipments to print, in print order, and how many matches were skipped for lack of a waybill."""
    query = select(shipments)
    if args.client:
        client = await clients.resolve(db, args.client)
        query = query.where(shipments.c.client_id == client["id"])
    if args.ids:
        query = query.where(shipments.c.id.in_(args.ids))
    elif args.case:
        query = query.where(
            shipments.c.id.in_(select(shipment_cases.c.shipment_id).where(shipment_cases.c.case_no == args.case))
        )
    else:
        query = query.where(shipments.c.created_at >= args.since)
    async with db.read() as conn:
        # Shipment ids are ULIDs: ordering by id is ordering by creation time.
        rows = [dict(r._mapping) for r in await conn.execute(query.order_by(shipments.c.id))]
    if args.ids:
        by_id = {r["id"]: r for r in rows}
        unknown = [sid for sid in args.ids if sid not in by_id]
        if unknown:
            raise CliError("no such shipment" + (" for this client" if args.client else "") + ": " + ", ".join(unknown))
        not_ready = [sid for sid in args.ids if not by_id[sid]["waybill_no"]]
        if not_ready:
            raise CliError("no waybill yet (not ordered): " + ", ".join(not_ready))
        return [by_id[sid] for sid in args.ids], 0
    what = f"--case {args.case}" if args.case else f"--since {args.since.isoformat()}"
    if not rows:
        raise CliError(f"no shipments match {what}")
    ready = [r for r in rows if r["waybill_no"]]
    if not ready:
        raise CliError(f"{len(rows)} shipments match {what}, but none has a waybill yet")
    return ready, len(rows) - len(ready)


def _reserve_output(path: Path) -> Path:
    """A temporary file beside ``path``: proves the target is writable before any work, renamed at the end."""
    target = path.expanduser()
    if target.is_dir():
        raise CliError(f"cannot write {path}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent.resolve())
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(tmp)


def cmd_labels_print(args: argparse.Namespace, settings: Settings) -> None:
    tmp = _reserve_output(args.output)

    async def work(db: Database) -> tuple[int, int]:
        rows, skipped = await select_rows(db, args)
        batch = await prepare_batch(db, settings, rows, args.format, args.size, args.dpi)
        progress = None if args.quiet else Progress(len(rows))
        with tmp.open("wb") as out:
            await write_batch(batch, out, progress=progress)
        return len(rows), skipped

    try:
        count, skipped = with_db(settings, work)
        os.replace(tmp, args.output.expanduser())
    finally:
        tmp.unlink(missing_ok=True)
    note = f" ({skipped} without a waybill skipped)" if skipped else ""
    print(f"{count} labels written to {args.output}{note}")


def add_parser(subparsers: Any) -> None:
    """Add `labels print` to the `logistics` command's subcommands."""
    lb = subparsers.add_parser("labels", help="print shipping labels (面单)").add_subparsers(
        dest="labels_command", required=True, metavar="ACTION"
    )
    pr = lb.add_parser("print", help="many labels into one PDF or ZPL file, with a progress bar on stderr")
    which = pr.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", type=_ids, help="shipment ids, comma-separated; printed in this order")
    which.add_argument("--case", help="every shipment carrying this case number (办件编号)")
    which.add_argument("--since", type=since, help="every shipment created since (ISO 8601; Beijing time if no zone)")
    pr.add_argument("--client", help="only this client's shipments (id or name)")
    pr.add_argument("--format", choices=BATCH_FORMATS, default="pdf")
    pr.add_argument("--size", choices=list(SIZES), default=DEFAULT_SIZE)
    pr.add_argument("--dpi", type=int, choices=DPIS, default=DEFAULT_DPI, help="printer resolution (ZPL)")
    pr.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(fn=cmd_labels_print)
