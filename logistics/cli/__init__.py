"""The `logistics` command: the parser built from each command group's module, and ``main``."""

from __future__ import annotations

import argparse
import os
import sys

from logistics import logs
from logistics.cli import audit, clients, dev, labels, service, staff, webhooks
from logistics.cli.common import CliError, load_settings

# In the order `logistics --help` lists them.
GROUPS = (dev, service, clients, webhooks, labels, staff, audit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logistics", description="政务寄递 courier integration service")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
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
