"""POST /v1/labels streams its document: the same bytes as rendering in memory, errors still answered properly."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from labels_app_support import BASE_URL, decode_pdf_pages, ordered
from sqlalchemy import select

from labels import LabelData, iter_pdf, render_pdf, render_zpl
from logistics import label_store
from logistics.accounts.clients import Credentials
from logistics.config import Settings
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import auth


async def _made(api: TestClient, db: Database, hall: Credentials, n: int) -> list[dict[str, Any]]:
    return [await ordered(api, db, hall, waybill=f"12957805{k:05d}") for k in range(n)]


async def _rows(db: Database, ids: list[str]) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = {r.id: dict(r._mapping) for r in await conn.execute(select(shipments).where(shipments.c.id.in_(ids)))}
    return [rows[i] for i in ids]


async def _batch(db: Database, settings: Settings, ids: list[str], fmt: str = "pdf") -> label_store.LabelBatch:
    return await label_store.prepare_batch(db, settings, await _rows(db, ids), fmt)


async def test_batch_pdf_is_streamed_in_chunks_and_equals_the_in_memory_rendering(
    api: TestClient, db: Database, settings: Settings, hall: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, so that a dozen labels take the handler through many chunk round trips.
    monkeypatch.setattr(label_store, "iter_pdf", functools.partial(iter_pdf, chunk_bytes=4096))
    made = await _made(api, db, hall, 12)
    ids = [m["id"] for m in made[6:] + made[:6]]
    resp = await api.post(
        "/v1/labels", json={"shipment_ids": ids}, headers={**auth(hall), "X-Request-ID": "print-run-7"}
    )
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert resp.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in resp.headers
    assert resp.headers["Content-Disposition"] == 'attachment; filename="labels-100x150.pdf"'
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert resp.headers["X-Label-Count"] == "12"
    assert resp.headers["X-Request-ID"] == "print-run-7"
    body = await resp.read()
    batch = await _batch(db, settings, ids)
    assert body == render_pdf(batch.labels())
    expected = [{"barcode": r["waybill_no"], "qr": f"{BASE_URL}/t/{r['tracking_code']}"} for r in batch.rows]
    assert decode_pdf_pages(body) == expected


async def test_batch_zpl_stream_is_the_labels_blocks_one_after_another(
    api: TestClient, db: Database, settings: Settings, hall: Credentials
) -> None:
    made = await _made(api, db, hall, 3)
    ids = [made[2]["id"], made[0]["id"], made[1]["id"]]
    resp = await api.post("/v1/labels", json={"shipment_ids": ids, "format": "zpl"}, headers=auth(hall))
    assert resp.status == 200
    batch = await _batch(db, settings, ids, "zpl")
    assert await resp.read() == render_zpl(list(batch.labels())).encode("utf-8")


async def test_a_failure_before_the_first_byte_is_still_a_problem_answer(
    api: TestClient, db: Database, hall: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(labels: Iterable[LabelData], size: str) -> Iterator[bytes]:
        next(iter(labels))
        raise RuntimeError("the font file is gone")
        yield b""  # a generator, like the real one

    monkeypatch.setattr(label_store, "iter_pdf", broken)
    made = await _made(api, db, hall, 2)
    resp = await api.post("/v1/labels", json={"shipment_ids": [m["id"] for m in made]}, headers=auth(hall))
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"].endswith("/internal")
    assert resp.headers["X-Request-ID"]


async def test_a_failure_after_the_first_byte_cuts_the_document_short_visibly(
    api: TestClient, db: Database, hall: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails_midway(labels: Iterable[LabelData], size: str) -> Iterator[bytes]:
        chunks = iter_pdf(labels, size, chunk_bytes=1024)
        yield next(chunks)
        raise RuntimeError("disk full")

    monkeypatch.setattr(label_store, "iter_pdf", fails_midway)
    made = await _made(api, db, hall, 3)
    resp = await api.post("/v1/labels", json={"shipment_ids": [m["id"] for m in made]}, headers=auth(hall))
    assert resp.status == 200  # sent with the first chunk, before the failure
    # The chunked body never gets its final chunk: the client cannot mistake the start of a PDF for all of it.
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
