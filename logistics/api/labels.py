"""/v1/shipments/{id}/label and /v1/labels: one label, or many in one printable document."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from sqlalchemy import select

from labels import DEFAULT_DPI, DEFAULT_SIZE, FORMATS, SIZES
from logistics import logs
from logistics.api.appkeys import DB, REQUEST_ID, SETTINGS
from logistics.api.auth import authenticate
from logistics.api.errors import Problem, validation_problem
from logistics.api.shipments import load_owned, read_json
from logistics.domain.tables import shipments
from logistics.label_store import BATCH_FORMATS, CONTENT_TYPES, DPIS, LabelBatch, get_rendered, prepare_batch

log = logging.getLogger("logistics.api")
routes = web.RouteTableDef()


def _not_ready(detail: str, errors: list[dict[str, str]] | None = None) -> Problem:
    return Problem(409, "label-not-ready", "Label not ready", detail, errors=errors)


def _variant(fmt: Any, size: Any, dpi: Any, formats: tuple[str, ...], where: str) -> tuple[str, str, int]:
    """Validate format, size and dpi together, so one 422 lists every bad field."""
    errors: list[dict[str, str]] = []
    # JSON bodies can hold lists and objects where a name is expected: only strings are looked up.
    if not isinstance(fmt, str) or fmt not in formats:
        errors.append({"field": f"{where}format", "message": "must be one of " + ", ".join(formats)})
    if not isinstance(size, str) or size not in SIZES:
        errors.append({"field": f"{where}size", "message": "must be one of " + ", ".join(SIZES)})
    try:
        dpi_value = int(dpi) if isinstance(dpi, int | str) else 0
    except (TypeError, ValueError, OverflowError):
        dpi_value = 0
    if isinstance(dpi, bool) or dpi_value not in DPIS:
        errors.append({"field": f"{where}dpi", "message": "must be one of " + ", ".join(map(str, DPIS))})
    if errors:
        raise validation_problem(errors)
    return fmt, size, dpi_value


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@routes.get("/v1/shipments/{id}/label")
async def get_label(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    q = request.query
    fmt, size, dpi = _variant(
        q.get("format", "pdf"), q.get("size", DEFAULT_SIZE), q.get("dpi", str(DEFAULT_DPI)), FORMATS, "query."
    )
    db = request.app[DB]
    async with db.read() as conn:
        row = await load_owned(conn, client_id, request.match_info["id"])
    if not row["waybill_no"]:
        raise _not_ready(
            f"The shipment is {row['status']} and has no waybill yet; the label exists once it is ordered."
        )
    label = await get_rendered(db, request.app[SETTINGS], row, fmt, size, dpi)
    etag = f'"{label.content_hash}"'
    # A label carries personal data: only the client may keep it, and it revalidates with the ETag.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Disposition"] = f'inline; filename="label-{row["waybill_no"]}-{size}.{fmt}"'
    return web.Response(body=label.body, content_type=CONTENT_TYPES[fmt], headers=headers)


def _shipment_ids(payload: dict[str, Any], limit: int) -> list[str]:
    ids = payload.get("shipment_ids")
    if not isinstance(ids, list) or not ids:
        raise validation_problem([{"field": "shipment_ids", "message": "must be a non-empty list of shipment ids"}])
    if len(ids) > limit:
        raise validation_problem([{"field": "shipment_ids", "message": f"at most {limit} ids per request"}])
    bad = [
        {"field": f"shipment_ids[{n}]", "message": "must be a shipment id string"}
        for n, value in enumerate(ids)
        if not isinstance(value, str) or not value or len(value) > 40
    ]
    if bad:
        raise validation_problem(bad)
    return ids


@routes.post("/v1/labels")
async def batch_labels(request: web.Request) -> web.StreamResponse:
    client_id = await authenticate(request)
    settings = request.app[SETTINGS]
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise validation_problem([{"field": "body", "message": "must be a JSON object"}])
    ids = _shipment_ids(payload, settings.label_batch_max)
    fmt, size, dpi = _variant(
        payload.get("format", "pdf"),
        payload.get("size", DEFAULT_SIZE),
        payload.get("dpi", DEFAULT_DPI),
        BATCH_FORMATS,
        "",
    )
    db = request.app[DB]
    wanted = list(dict.fromkeys(ids))
    found: dict[str, dict[str, Any]] = {}
    async with db.read() as conn:
        for start in range(0, len(wanted), 500):  # bounded IN lists
            result = await conn.execute(
                select(shipments).where(
                    shipments.c.id.in_(wanted[start : start + 500]), shipments.c.client_id == client_id
                )
            )
            found.update({r.id: dict(r._mapping) for r in result})
    # Another client's shipment is reported exactly like a missing one.
    unknown = [
        {"field": f"shipment_ids[{n}]", "message": f"no such shipment: {sid}"}
        for n, sid in enumerate(ids)
        if sid not in found
    ]
    if unknown:
        raise validation_problem(unknown)
    not_ready = [
        {"field": f"shipment_ids[{n}]", "message": f"{sid} is {found[sid]['status']} and has no waybill yet"}
        for n, sid in enumerate(ids)
        if not found[sid]["waybill_no"]
    ]
    if not_ready:
        raise _not_ready(f"{len(not_ready)} of the shipments have no waybill yet; see errors.", not_ready)
    # A repeated id prints its label again (the hall may want two copies), with the same print time.
    batch = await prepare_batch(db, settings, [found[sid] for sid in ids], fmt, size, dpi)
    return await send_batch(request, batch)


async def send_batch(request: web.Request, batch: LabelBatch) -> web.StreamResponse:
    """The batch as one download, streamed (the console's 打印所选面单 answers with it too)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": CONTENT_TYPES[batch.fmt],
            "Content-Disposition": f'attachment; filename="labels-{batch.size}.{batch.fmt}"',
            "Cache-Control": "private, no-store",
            "X-Label-Count": str(len(batch)),
            # The middleware adds this to answers it gets back, but a streamed answer's headers are out by then.
            "X-Request-ID": request[REQUEST_ID],
        }
    )
    return await stream_document(request, response, batch.chunks())


async def stream_document(
    request: web.Request, response: web.StreamResponse, chunks: Iterator[bytes]
) -> web.StreamResponse:
    """Send ``chunks`` as the body, drawing each in a thread only once the client has taken the one before.

    The document is never held whole, and a slow client holds no thread while it reads. The first chunk is
    drawn before the status line goes out, so a failure up to there is still an ordinary problem+json answer.
    """
    loop = asyncio.get_running_loop()
    chunk = await loop.run_in_executor(None, next, chunks, None)
    await response.prepare(request)
    try:
        while chunk is not None:
            await response.write(chunk)
            chunk = await loop.run_in_executor(None, next, chunks, None)
    except ConnectionError:
        return response  # the client went away; nobody is left to tell
    except Exception:
        # The status line and part of the document are out: an error answer is no longer possible. Closing the
        # connection before the chunked body's last chunk is how the client learns the document is incomplete,
        # rather than printing a truncated one.
        log.exception("label_stream_failed", extra={"route": logs.route_template(request)})
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
