"""`logistics audit access`: the operator reads the console's record of views of personal data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient
from console_support import create, sign_in

from logistics.accounts import clients, staff

from support import APPLICANT


def audit(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    env |= {"LOGISTICS_DATA_DIR": str(tmp), "LOGISTICS_DATABASE_URL": database_url, "LOGISTICS_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "logistics", "audit", "access", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_operator_reads_who_viewed_which_shipment_from_where(
    api: TestClient,
    hall: clients.Credentials,
    clerk: staff.NewStaff,
    tax_clerk: staff.NewStaff,
    database_url: str,
    tmp_path: Path,
) -> None:
    viewed = await create(api, hall)
    await create(api, hall)
    await sign_in(api, clerk.token)
    await api.get(f"/console/shipments/{viewed['id']}")
    done = audit(database_url, tmp_path, "--shipment", viewed["id"], "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["staff_id"], row["shipment_id"], row["address"], row["view"]) == (
        clerk.member.id,
        viewed["id"],
        "127.0.0.1",
        "shipment",
    )
    text = audit(database_url, tmp_path, "--staff", clerk.member.id)
    assert viewed["id"] in text.stdout and "opened the shipment" in text.stdout
    assert APPLICANT["phone"] not in text.stdout  # the record says who looked, not what they saw
    nobody = audit(database_url, tmp_path, "--staff", tax_clerk.member.id)
    assert "no views of personal data recorded" in nobody.stdout


def test_a_malformed_since_is_a_clear_message(tmp_path: Path) -> None:
    done = audit(f"sqlite:///{tmp_path / 'none.db'}", tmp_path, "--since", "yesterday")
    assert done.returncode == 2
    assert "ISO 8601" in done.stderr and "Traceback" not in done.stderr
