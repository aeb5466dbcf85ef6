"""The benchmarks' seeder writes what the service itself would hold: consistent histories, proofs on delivered
shipments, the purge applied to old ones, ratings and follow-ups; the same data for a seed."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text

from benchmarks.seed import seed
from benchmarks.seed_rows import Generator
from logistics.domain import proof
from logistics.domain.tables import complaints, shipment_events, shipments
from logistics.storage.db import Database

NOW = datetime(2026, 12, 4, 6, 30, tzinfo=UTC)  # 14:30 in Beijing, a Friday


def _generator(seed_value: int) -> Generator:
    return Generator(seed=seed_value, now=NOW, months=24, department_count=30, clients=["cli_a"], clerks={})


def test_the_same_seed_gives_the_same_shipments() -> None:
    first, again, other = _generator(7), _generator(7), _generator(8)
    runs = [[g.shipment().shipment for _ in range(50)] for g in (first, again, other)]
    assert runs[0] == runs[1] != runs[2]


async def test_histories_are_consistent_and_delivered_shipments_carry_their_proof(db: Database) -> None:
    summary = await seed(db, shipments=600, months=24, departments=30, seed=3, now=NOW, jobs=1)
    assert summary.shipments == 600 and summary.rows["shipments"] == 600
    async with db.read() as conn:
        rows = (await conn.execute(select(shipments))).mappings().all()
        events = (await conn.execute(select(shipment_events).order_by(shipment_events.c.sequence))).mappings().all()
        complaint_count = (await conn.execute(select(func.count()).select_from(complaints))).scalar_one()
    statuses = Counter(r["status"] for r in rows)
    assert statuses["delivered"] > 450 and {"cancelled", "returned", "failed"} <= set(statuses)
    by_shipment: dict[str, list[dict[str, object]]] = {}
    for e in events:
        by_shipment.setdefault(str(e["shipment_id"]), []).append(dict(e))
    for row in rows:
        history = by_shipment[row["id"]]
        assert [e["sequence"] for e in history] == list(range(1, row["last_sequence"] + 1))
        assert history[-1]["status"] == row["status"]
        if row["status"] == "delivered":
            facts = row["proof"]
            assert facts["sha256"] == proof.digest(facts) and facts["handed_to_post_at"] is not None
            assert facts["purged"] == (row["purged_at"] is not None)
    purged = [r for r in rows if r["purged_at"] is not None]
    assert purged and all("*" in (r["recipient"] or r["sender"])["phone"] for r in purged)
    assert complaint_count > 0


async def test_ratings_open_a_follow_up_for_every_bad_rating(db: Database) -> None:
    summary = await seed(db, shipments=600, months=24, departments=30, seed=3, now=NOW, jobs=1)
    assert summary.rows["ratings"] > 100
    async with db.read() as conn:
        bad = (await conn.execute(text("SELECT count(*) FROM ratings WHERE level <= 2"))).scalar_one()
        follow_ups = (await conn.execute(text("SELECT count(*) FROM follow_ups"))).scalar_one()
    assert follow_ups == bad


def test_a_database_that_cannot_be_used_is_named_in_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("not a folder")
    missing = tmp_path / "a file" / "bench.db"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.seed", "--database-url", f"sqlite:///{missing}", "--shipments", "10"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("seed: cannot use sqlite:///") and "Traceback" not in done.stderr
