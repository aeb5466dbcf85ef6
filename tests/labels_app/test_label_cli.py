"""`logistics labels print` as an operator runs it: a real subprocess against the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient
from labels_app_support import BASE_URL, create, decode_pdf_pages, ordered

from logistics.accounts.clients import Credentials
from logistics.storage.db import Database

CASE = "410106-2018-00095"  # delivery_body()'s case


async def run(database_url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGISTICS_")}
    env |= {
        "LOGISTICS_DATA_DIR": str(tmp),
        "LOGISTICS_DATABASE_URL": database_url,
        "LOGISTICS_PUBLIC_BASE_URL": BASE_URL,
        "LOGISTICS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "logistics", "labels", "print", *args]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)


async def test_print_by_case_writes_one_page_per_shipment_in_creation_order(
    api: TestClient, db: Database, hall: Credentials, tmp_path: Path
) -> None:
    first = await ordered(api, db, hall, waybill="1295780512701")
    await ordered(
        api,
        db,
        hall,
        waybill="1295780512702",
        cases=[{"case_no": "410106-2018-00107", "item_name": "个体工商户设立登记"}],
    )
    second = await ordered(api, db, hall, waybill="1295780512703")
    out = tmp_path / "上街区-面单.pdf"
    result = await run(db.url, tmp_path, "--case", CASE, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert [p["barcode"] for p in decode_pdf_pages(out.read_bytes())] == ["1295780512701", "1295780512703"]
    assert [p["qr"] for p in decode_pdf_pages(out.read_bytes())] == [
        f"{BASE_URL}/t/{first['tracking_code']}",
        f"{BASE_URL}/t/{second['tracking_code']}",
    ]
    assert "2/2" in result.stderr  # the progress bar reached the end
    assert result.stdout.startswith("2 labels written to ")


async def test_print_by_ids_keeps_the_given_order_and_writes_zpl(
    api: TestClient, db: Database, hall: Credentials, tmp_path: Path
) -> None:
    a = await ordered(api, db, hall, waybill="1295780512711")
    b = await ordered(api, db, hall, waybill="1295780512712")
    out = tmp_path / "labels.zpl"
    result = await run(db.url, tmp_path, "--ids", f"{b['id']},{a['id']}", "--format", "zpl", "-q", "-o", str(out))
    assert result.returncode == 0, result.stderr
    zpl = out.read_text()
    assert zpl.count("^XA") == 2 and zpl.index("1295780512712") < zpl.index("1295780512711")


async def test_no_matching_shipment_is_a_clear_error_and_writes_nothing(
    api: TestClient, db: Database, hall: Credentials, tmp_path: Path
) -> None:
    await ordered(api, db, hall)
    out = tmp_path / "out.pdf"
    result = await run(db.url, tmp_path, "--case", "410106-2019-99999", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == "logistics: no shipments match --case 410106-2019-99999"
    assert [name for name in os.listdir(tmp_path) if "out.pdf" in name] == []  # nor a leftover .part file


async def test_an_id_without_a_waybill_is_named_in_the_error(
    api: TestClient, db: Database, hall: Credentials, tmp_path: Path
) -> None:
    pending = await create(api, hall)
    result = await run(db.url, tmp_path, "--ids", pending["id"], "-o", str(tmp_path / "out.pdf"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"logistics: no waybill yet (not ordered): {pending['id']}"


async def test_an_unwritable_output_is_a_clear_error(
    api: TestClient, db: Database, hall: Credentials, tmp_path: Path
) -> None:
    await ordered(api, db, hall)
    result = await run(db.url, tmp_path, "--case", CASE, "-o", str(tmp_path / "no-such-dir" / "out.pdf"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"logistics: cannot write {tmp_path / 'no-such-dir' / 'out.pdf'}: ")
