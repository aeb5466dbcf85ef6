"""Run every benchmark and write one Markdown report with machine facts and each script's same-run ratios.

    .venv/bin/python benchmarks/report.py [--postgres postgresql://postgres@127.0.0.1:5432/test] [-o FILE]

Each benchmark prints its own baseline measured in the same run and the ratio against it; the report keeps
those lines as printed, after the machine facts that explain them (this machine is shared: note the load).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# The report's hand-kept parts, carried over on every rewrite: sections whose heading says "(hand-run" (runs on
# data seeded beforehand, with a profiler, …) and the tail from HISTORY_HEADING (earlier runs, measurements behind
# design choices).
HISTORY_HEADING = "## History"
HAND_RUN = "(hand-run"

# (title, goal, command): the goals are the issues' own words.
BENCHMARKS = [
    (
        "Dispatch API: create shipment",
        "≥ 40 % of bare aiohttp on PostgreSQL (p99 ≤ 30 ms at 64 connections); ≥ 30 % on SQLite, zero errors",
        ["benchmarks/api.py", "--rounds", "5", "--index-cost"],
    ),
    (
        "Pipeline: API accept → ordered",
        "≥ 0.25 × no-op arq job rate; 300 ms carrier latency costs ≤ 20 %",
        ["benchmarks/pipeline.py", "-n", "5000"],
    ),
    (
        "Labels (library)",
        "batch PDF label ≤ 1.25 × bare QR matrix; 1,000 labels ≤ 7 s; memory flat",
        ["benchmarks/labels.py"],
    ),
    ("Labels through the API", "1,000 labels in one PDF ≤ 7 s", ["benchmarks/labels_api.py"]),
    (
        "Proof of service (送达回证)",
        "proof PDF ≤ 2 × a label PDF to render; a stored proof served ≥ 50 % of a stored label's rate",
        ["benchmarks/proof.py"],
    ),
    ("Webhooks (library sender)", "≥ 50 % of a bare aiohttp POST loop", ["benchmarks/webhooks.py"]),
    ("Webhooks through the app", "≥ 50 % of a bare aiohttp POST loop", ["benchmarks/webhooks_app.py"]),
    (
        "Console on a big database",
        "today, exceptions, find by case/waybill/phone: p99 ≤ 50 ms at 16 connections on PostgreSQL with "
        "1,000,000 shipments, ≤ 100 ms on SQLite with 200,000; query plans shown (issue 18)",
        ["benchmarks/console.py"],
    ),
    (
        "公示: what keeping the figures costs",
        "≤ 5 % of create throughput and of the pipeline's rate, same run with and without (issue 19)",
        ["benchmarks/gongshi_cost.py", "--rounds", "4"],
    ),
    (
        "公示: freshness while the order queue is busy",
        "the figures served are under 60 s old (45 s + the 15 s cache) through a burst (issue 19)",
        ["benchmarks/gongshi_fresh.py", "-n", "12000"],
    ),
    (
        "Scale-out: workers and API processes on PostgreSQL",
        "CPU per shipment of each process kind, and how the rate moves with 1/2/4 workers × 1/2 API processes "
        "(bounded by the cores; issue 20)",
        ["benchmarks/scale.py", "-n", "1500"],
    ),
]


def machine_facts() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return [
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- commit: {commit.strip()}",
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem_kb / 1024 / 1024:.1f} GiB",
        f"- Python {platform.python_version()} on {platform.platform()}",
        f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def kept_parts(report: Path) -> list[str]:
    """The hand-run sections of an existing report, then its history (from its heading to the end)."""
    if not report.exists():
        return []
    text = report.read_text()
    start = text.find("\n" + HISTORY_HEADING + "\n")
    body, history = (text[:start], text[start + 1 :]) if start >= 0 else (text, "")
    hand_run = [
        "## " + section.rstrip("\n")
        for section in body.split("\n## ")[1:]
        if HAND_RUN in section.split("\n", 1)[0]
    ]
    return [part for section in hand_run for part in (section, "")] + ([history.rstrip("\n"), ""] if history else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("LOGISTICS_TEST_POSTGRES_URL"))
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "REPORT.md")
    parser.add_argument("--only", help="run only benchmarks whose script name contains this")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.postgres:
        env["LOGISTICS_TEST_POSTGRES_URL"] = args.postgres
    lines = ["# Benchmark report", "", *machine_facts(), ""]
    for title, goal, command in BENCHMARKS:
        if args.only and args.only not in command[0]:
            continue
        print(f"== {title}: {' '.join(command)}", file=sys.stderr, flush=True)
        started = time.monotonic()
        result = subprocess.run([PY, *command], cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.monotonic() - started
        output = (result.stdout.strip() or "(no output)") + (
            f"\n\nexit code {result.returncode}\n{result.stderr.strip()[-2000:]}" if result.returncode else ""
        )
        lines += [
            f"## {title}",
            "",
            f"Goal: {goal}.",
            "",
            f"`{' '.join(command)}` — {took:.0f} s, load average "
            f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            "",
            "```",
            output,
            "```",
            "",
        ]
    lines += kept_parts(args.output)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"report written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
