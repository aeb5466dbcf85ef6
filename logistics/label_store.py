"""Labels in the app: shipment rows → :class:`labels.LabelData`, and rendered labels cached in ``label_renders``.

The ``labels`` library renders deterministically and names its output with :func:`labels.content_hash`, which
includes the print time. So the first print time is stored on the shipment (``label_printed_at``) and reused:
as long as the shipment's label data is unchanged, the hash is unchanged and the stored bytes are served; any
change to what the label shows (a new 大头笔 from the carrier, a corrected address) gives a new hash and one
new rendering. Rendering is CPU work and runs in a thread so the event loop keeps serving.

Batches (``POST /v1/labels``, ``logistics labels print``) are not cached and never held whole: a
:class:`LabelBatch` is checked and loaded up front, so that every refusal comes before the first byte, and is
then drawn label by label into a file (:func:`write_batch`) or handed out in chunks (:meth:`LabelBatch.chunks`).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from labels import (
    DEFAULT_DPI,
    DEFAULT_SIZE,
    FORMATS,
    SIZES,
    SUPPORTED_DPI,
    LabelData,
    LabelParty,
    content_hash,
    iter_pdf,
    render_pdf,
    render_png,
    render_zpl,
    write_pdf,
)
from labels.pdf import CHUNK_BYTES
from labels.pdfwriter import Sink
from logistics.config import Settings
from logistics.domain.events import lock_shipment_ids
from logistics.domain.tables import label_renders, shipment_cases, shipments, utcnow
from logistics.storage.db import Database

__all__ = [
    "BATCH_FORMATS",
    "CONTENT_TYPES",
    "DPIS",
    "FORMATS",
    "SIZES",
    "LabelBatch",
    "LabelNotReady",
    "RenderedLabel",
    "ensure_printed_at",
    "get_label",
    "get_rendered",
    "get_rendered_many",
    "label_data",
    "load_cases",
    "prepare_batch",
    "render_batch",
    "write_batch",
]

DPIS = SUPPORTED_DPI
BATCH_FORMATS = ("pdf", "zpl")  # a PNG is one image: no multi-label form
CONTENT_TYPES = {"pdf": "application/pdf", "png": "image/png", "zpl": "application/zpl"}
CARRIER_NAMES = {"ems": "EMS"}
PRODUCT_NAME = "特快专递"
# Printed times are read by hall staff and couriers in China: Beijing time, whatever the server's zone.
BEIJING = timezone(timedelta(hours=8), "CST")


class LabelNotReady(Exception):
    """The shipment has no waybill yet (not ordered, or the order failed): there is nothing to print."""


@dataclass(frozen=True, slots=True)
class RenderedLabel:
    body: bytes
    content_hash: str
    content_type: str
    rendered: bool  # False when served from the cache


def _party(data: Mapping[str, Any] | None, *, organisation: bool) -> LabelParty:
    data = data or {}
    return LabelParty(
        name=str(data.get("name") or ""),
        phone=str(data.get("phone") or ""),
        province=str(data.get("province") or ""),
        city=str(data.get("city") or ""),
        district=str(data.get("district") or ""),
        address=str(data.get("address") or ""),
        is_organisation=organisation,
    )


def label_data(
    row: Mapping[str, Any], cases: Sequence[Mapping[str, Any]], base_url: str, printed_at: datetime
) -> LabelData:
    """The label of a shipment row. Only the fields a label shows are read: the 取件验证码 never reaches it."""
    if not row.get("waybill_no"):
        raise LabelNotReady(row["id"])
    intake = row["kind"] == "intake"
    # The hall's name, switchboard and address are public; only the applicant's side is masked.
    sender = _party(row["sender"], organisation=not intake)
    recipient = _party(row["recipient"], organisation=intake)
    return LabelData(
        waybill_no=row["waybill_no"],
        tracking_url=f"{base_url}/t/{row['tracking_code']}",
        kind=row["kind"],
        carrier_name=CARRIER_NAMES.get(str(row["carrier"]).lower(), str(row["carrier"]).upper()),
        product_name=PRODUCT_NAME,
        destination_name=row.get("destination_name") or "",
        destination_code=row.get("destination_code") or "",
        route_code=row.get("route_code") or "",
        sender=sender,
        recipient=recipient,
        contents=tuple((str(c["name"]), int(c["count"])) for c in row.get("contents") or ()),
        cases=tuple((str(c["case_no"]), str(c["item_name"])) for c in cases),
        department=row["department"],
        window=row["window"],
        printed_at=printed_at.astimezone(BEIJING),
    )


def render_one(label: LabelData, fmt: str, size: str, dpi: int) -> bytes:
    """One label in one format. Module-level so that tests can count renderings."""
    if fmt == "pdf":
        return render_pdf([label], size)
    if fmt == "png":
        return render_png(label, size, dpi)
    return render_zpl([label], size, dpi).encode("utf-8")


def check_variant(fmt: str, size: str, dpi: int) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    if dpi not in DPIS:
        raise ValueError(f"dpi must be one of {', '.join(map(str, DPIS))}")


def _cache_dpi(fmt: str, dpi: int) -> int:
    # A PDF is vector: one stored render serves every dpi asked for, so it is kept under dpi 0.
    return 0 if fmt == "pdf" else dpi


async def load_cases(conn: AsyncConnection, shipment_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {sid: [] for sid in shipment_ids}
    for start in range(0, len(shipment_ids), 500):  # bounded IN lists
        chunk = list(shipment_ids[start : start + 500])
        rows = await conn.execute(
            select(shipment_cases)
            .where(shipment_cases.c.shipment_id.in_(chunk))
            .order_by(shipment_cases.c.shipment_id, shipment_cases.c.position)
        )
        for r in rows:
            out[r.shipment_id].append(dict(r._mapping))
    return out


async def ensure_printed_at(db: Database, rows: Sequence[dict[str, Any]]) -> None:
    """Give every row a first print time (stored once, then reused); updates ``rows`` in place."""
    missing = [r["id"] for r in rows if r.get("label_printed_at") is None and r.get("waybill_no")]
    if not missing:
        return
    # Whole seconds: the label prints minutes, and a stable value must survive every backend's round trip.
    now = utcnow().replace(microsecond=0)
    stored: dict[str, datetime] = {}
    async with db.write() as conn:
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            await lock_shipment_ids(conn, chunk)  # in id order, like every other transaction locking several
            # Only where still unset: a concurrent first print may have won, and its time is the one to keep.
            await conn.execute(
                update(shipments)
                .where(shipments.c.id.in_(chunk), shipments.c.label_printed_at.is_(None))
                .values(label_printed_at=now)
            )
            result = await conn.execute(
                select(shipments.c.id, shipments.c.label_printed_at).where(shipments.c.id.in_(chunk))
            )
            stored.update({r.id: r.label_printed_at for r in result})
    for r in rows:
        if r["id"] in stored:
            r["label_printed_at"] = stored[r["id"]]


def _upsert(dialect: str) -> Any:
    """Store a rendered label, replacing the one of the same variant (a statement built once per dialect,
    executed with each label's values)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(label_renders)
    return stmt.on_conflict_do_update(
        index_elements=["shipment_id", "fmt", "size", "dpi"],
        set_={
            "content_hash": stmt.excluded.content_hash,
            "body": stmt.excluded.body,
            "created_at": stmt.excluded.created_at,
        },
    )


_UPSERT = {dialect: _upsert(dialect) for dialect in ("postgresql", "sqlite")}


async def get_rendered(
    db: Database,
    settings: Settings,
    shipment_row: Mapping[str, Any],
    fmt: str = "pdf",
    size: str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    executor: Executor | None = None,
) -> RenderedLabel:
    """The shipment's label: from the cache when its content hash still matches, else rendered and stored.

    ``executor`` runs the rendering; None is the default thread pool (the API), the worker passes a process
    pool so that rendering PDFs never holds the GIL that its carrier calls and database writes need.
    """
    if not shipment_row.get("waybill_no"):
        raise LabelNotReady(shipment_row["id"])
    found = await get_rendered_many(db, settings, [shipment_row], fmt, size, dpi, executor)
    return found[shipment_row["id"]]


async def get_rendered_many(
    db: Database,
    settings: Settings,
    shipment_rows: Sequence[Mapping[str, Any]],
    fmt: str = "pdf",
    size: str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    executor: Executor | None = None,
) -> dict[str, RenderedLabel]:
    """``get_rendered`` for many shipments (those with a waybill), by id: one read and at most two writes for
    all of them. The worker's label lane renders a claim at a time this way; a few writes per label would queue
    its labels behind every other writer of SQLite."""
    check_variant(fmt, size, dpi)
    rows = [dict(r) for r in shipment_rows if r.get("waybill_no")]
    if not rows:
        return {}
    await ensure_printed_at(db, rows)
    cache_dpi = _cache_dpi(fmt, dpi)
    ids = [r["id"] for r in rows]
    async with db.read() as conn:
        cases = await load_cases(conn, ids)
        cached = {
            c.shipment_id: c
            for c in await conn.execute(
                select(label_renders.c.shipment_id, label_renders.c.content_hash, label_renders.c.body).where(
                    label_renders.c.shipment_id.in_(ids),
                    label_renders.c.fmt == fmt,
                    label_renders.c.size == size,
                    label_renders.c.dpi == cache_dpi,
                )
            )
        }
    found: dict[str, RenderedLabel] = {}
    missing: list[tuple[str, str, LabelData]] = []
    for row in rows:
        label = label_data(row, cases[row["id"]], settings.base_url, row["label_printed_at"])
        digest = content_hash(label, fmt, size, dpi)
        hit = cached.get(row["id"])
        if hit is not None and hit.content_hash == digest:
            found[row["id"]] = RenderedLabel(bytes(hit.body), digest, CONTENT_TYPES[fmt], rendered=False)
        else:
            missing.append((row["id"], digest, label))
    if missing:
        loop = asyncio.get_running_loop()
        bodies = await asyncio.gather(
            *(loop.run_in_executor(executor, render_one, label, fmt, size, dpi) for _, _, label in missing)
        )
        now = utcnow()
        stored = [
            {
                "shipment_id": sid,
                "fmt": fmt,
                "size": size,
                "dpi": cache_dpi,
                "content_hash": digest,
                "body": body,
                "created_at": now,
            }
            for (sid, digest, _), body in zip(missing, bodies, strict=True)
        ]
        # In id order: two stores of overlapping labels (a claim run again after its lease ran out) then wait
        # for each other's rows in one order instead of deadlocking on PostgreSQL.
        stored.sort(key=lambda row: row["shipment_id"])
        async with db.write() as conn:
            await conn.execute(_UPSERT[conn.dialect.name], stored)
        for row in stored:
            found[row["shipment_id"]] = RenderedLabel(
                row["body"], row["content_hash"], CONTENT_TYPES[fmt], rendered=True
            )
    return found


async def get_label(
    db: Database,
    settings: Settings,
    shipment_row: Mapping[str, Any],
    fmt: str = "pdf",
    size: str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
) -> bytes:
    """The label's bytes; see :func:`get_rendered`."""
    return (await get_rendered(db, settings, shipment_row, fmt, size, dpi)).body


def _counted(labels: Iterable[LabelData], progress: Callable[[int], None] | None) -> Iterator[LabelData]:
    # The renderers consume their input lazily, one page at a time, so counting here is real progress.
    for n, label in enumerate(labels, 1):
        yield label
        if progress is not None:
            progress(n)


@dataclass(frozen=True, slots=True)
class LabelBatch:
    """Shipments checked and loaded for one printed document; the labels are drawn only while it is written.

    What is held is the input (rows and their cases); each :class:`~labels.LabelData` is made when its page is
    drawn and dropped after, and the document goes out as it is drawn, so memory does not grow with the output.
    """

    rows: Sequence[Mapping[str, Any]]
    cases: Mapping[str, Sequence[Mapping[str, Any]]]
    base_url: str
    fmt: str
    size: str
    dpi: int

    def __len__(self) -> int:
        return len(self.rows)

    def labels(self) -> Iterator[LabelData]:
        for r in self.rows:
            yield label_data(r, self.cases[r["id"]], self.base_url, r["label_printed_at"])

    def chunks(self, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The document in chunks of about 64 KiB, drawn as they are asked for (call ``next`` off the event loop).

        A failure before the first chunk is raised by the first ``next``, before anything could have been sent.
        """
        labels = _counted(self.labels(), progress)
        if self.fmt == "pdf":
            yield from iter_pdf(labels, self.size)
            return
        # A ZPL stream is the labels' ^XA…^XZ blocks one after another: each is rendered on its own.
        parts: list[bytes] = []
        buffered = 0
        for label in labels:
            part = render_zpl([label], self.size, self.dpi).encode("utf-8")
            parts.append(part)
            buffered += len(part)
            if buffered >= CHUNK_BYTES:
                yield b"".join(parts)
                parts, buffered = [], 0
        if parts:
            yield b"".join(parts)

    def write(self, sink: Sink, progress: Callable[[int], None] | None = None) -> None:
        """Draw the whole document into ``sink`` (a binary file); blocking, so run it in a thread."""
        if self.fmt == "pdf":
            write_pdf(_counted(self.labels(), progress), self.size, sink)
            return
        for chunk in self.chunks(progress):
            sink.write(chunk)


async def prepare_batch(
    db: Database,
    settings: Settings,
    rows: Sequence[dict[str, Any]],
    fmt: str = "pdf",
    size: str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
) -> LabelBatch:
    """All ``rows`` (each with a waybill) for one multi-page PDF or one ZPL stream, in the order given.

    Everything that can refuse the batch happens here: bad variant, a row without a waybill, the database.
    First print times are stored now, so a batch prints the same times as the single labels.
    """
    if fmt not in BATCH_FORMATS:
        raise ValueError(f"format must be one of {', '.join(BATCH_FORMATS)}")
    check_variant(fmt, size, dpi)
    if not rows:
        raise ValueError("a batch needs at least one shipment")
    not_ready = [r["id"] for r in rows if not r.get("waybill_no")]
    if not_ready:
        raise LabelNotReady(", ".join(not_ready))
    await ensure_printed_at(db, rows)
    async with db.read() as conn:
        cases = await load_cases(conn, [r["id"] for r in rows])
    return LabelBatch(rows, cases, settings.base_url, fmt, size, dpi)


async def write_batch(batch: LabelBatch, sink: Sink, *, progress: Callable[[int], None] | None = None) -> None:
    """Write ``batch`` into ``sink`` in a thread. ``progress`` gets the labels drawn so far, from that thread."""
    await asyncio.to_thread(batch.write, sink, progress)


async def render_batch(
    db: Database,
    settings: Settings,
    rows: Sequence[dict[str, Any]],
    fmt: str = "pdf",
    size: str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    *,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The batch's document in memory: for small batches only; large ones go through :func:`write_batch` or
    :meth:`LabelBatch.chunks`, which produce the same bytes without holding them."""
    batch = await prepare_batch(db, settings, rows, fmt, size, dpi)
    buffer = io.BytesIO()
    await write_batch(batch, buffer, progress=progress)
    return buffer.getvalue()
