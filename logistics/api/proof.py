"""GET /v1/shipments/{id}/proof: the 送达回证 of a delivered shipment, as PDF (default) or JSON.

The facts were frozen when the shipment was delivered (``shipments.proof``), so every answer is the same until
the personal-data purge replaces them with what may be kept. The PDF is rendered once per version of the facts
and stored beside the labels (``label_renders``, ``fmt`` ``proof``), which the purge deletes with them.
``X-Proof-SHA256`` is the facts' digest, the one printed on the document; the JSON answer is the facts
themselves, so anyone can recompute it (:func:`logistics.domain.proof.canonical`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from logistics import proof_document
from logistics.api.appkeys import DB
from logistics.api.auth import authenticate
from logistics.api.errors import Problem
from logistics.api.shipments import json_response, load_owned
from logistics.domain.tables import label_renders, utcnow
from logistics.storage.db import Database

routes = web.RouteTableDef()
PDF = "application/pdf"
FMT, SIZE, DPI = "proof", "A4", 0  # its row in label_renders


def render_hash(facts: Mapping[str, Any]) -> str:
    """Names the PDF of these facts as this version of the layout draws them."""
    return hashlib.sha256(f"proof-pdf:{proof_document.RENDER_VERSION}:{facts['sha256']}".encode()).hexdigest()


def wants_json(accept: str) -> bool:
    """JSON only when asked for by name and preferred to PDF; everything else (no header, ``*/*``) is the PDF."""
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    json_q = quality.get("application/json", 0.0)
    return json_q > 0 and json_q >= quality.get(PDF, 0.0)


async def stored_pdf(db: Database, shipment_id: str, facts: Mapping[str, Any]) -> bytes:
    """The proof's PDF: the stored one while it matches the facts, else rendered (in a thread) and stored."""
    digest = render_hash(facts)
    async with db.read() as conn:
        hit = (
            await conn.execute(
                select(label_renders.c.content_hash, label_renders.c.body).where(
                    label_renders.c.shipment_id == shipment_id,
                    label_renders.c.fmt == FMT,
                    label_renders.c.size == SIZE,
                    label_renders.c.dpi == DPI,
                )
            )
        ).first()
    if hit is not None and hit.content_hash == digest:
        return bytes(hit.body)
    body = await asyncio.get_running_loop().run_in_executor(None, proof_document.render, facts)
    row = {"shipment_id": shipment_id, "fmt": FMT, "size": SIZE, "dpi": DPI, "content_hash": digest, "body": body}
    async with db.write() as conn:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(label_renders).values(**row, created_at=utcnow())
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["shipment_id", "fmt", "size", "dpi"],
                set_={"content_hash": digest, "body": body, "created_at": stmt.excluded.created_at},
            )
        )
    return body


@routes.get("/v1/shipments/{id}/proof")
async def get_proof(request: web.Request) -> web.Response:
    client_id = await authenticate(request)
    db = request.app[DB]
    async with db.read() as conn:
        row = await load_owned(conn, client_id, request.match_info["id"])
    facts = row["proof"]
    if facts is None:
        raise Problem(
            409,
            "proof-not-ready",
            "Proof not ready",
            f"The shipment is {row['status']}; its proof of service exists once it is delivered.",
        )
    # The document names a person: only the client may keep it. The digest lets a printout be checked.
    headers = {"X-Proof-SHA256": facts["sha256"], "Cache-Control": "private, no-cache", "Vary": "Accept"}
    if wants_json(request.headers.get("Accept", "")):
        return json_response(facts, headers=headers)
    body = await stored_pdf(db, row["id"], facts)
    headers["ETag"] = f'"{render_hash(facts)}"'
    headers["Content-Disposition"] = f'inline; filename="proof-{row["waybill_no"] or row["id"]}.pdf"'
    return web.Response(body=body, content_type=PDF, headers=headers)
