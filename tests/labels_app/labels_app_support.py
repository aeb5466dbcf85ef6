"""Helpers for the app-level label tests (a unique module name: test folders here are not packages)."""

from __future__ import annotations

import io
import re
from typing import Any

import pypdfium2 as pdfium
import zxingcpp
from aiohttp.test_utils import TestClient
from PIL import Image

from logistics.accounts.clients import Credentials
from logistics.domain.events import apply_event, lock_shipment
from logistics.storage.db import Database

from support import auth, delivery_body

BASE_URL = "http://127.0.0.1:8080"  # the settings fixture's public base URL
WAYBILL = "1295780512499"
# Fixed so that its absence from a label is a real check, not luck: no digit run on the test labels has it.
SECRET_CODE = "583920"
CARRIER_FIELDS = {
    "route_code": "451-A07",
    "destination_code": "450041",
    "destination_name": "郑州上街",
    "package_code": "45100",
    "package_name": "郑州上街包",
}


async def create(api: TestClient, creds: Credentials, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=delivery_body(**overrides), headers=auth(creds))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def mark_ordered(db: Database, shipment_id: str, waybill: str = WAYBILL, **changes: Any) -> None:
    """What the order task does on success: the waybill and sorting codes stored with the `ordered` event."""
    async with db.write() as conn:
        row = await lock_shipment(conn, shipment_id)
        assert row is not None
        applied = await apply_event(
            conn,
            row,
            status="ordered",
            source="system",
            updates={"waybill_no": waybill, **CARRIER_FIELDS, "verification_code": SECRET_CODE, **changes},
        )
        assert applied is not None and applied.changed


async def ordered(
    api: TestClient, db: Database, creds: Credentials, waybill: str = WAYBILL, **overrides: Any
) -> dict[str, Any]:
    created = await create(api, creds, **overrides)
    await mark_ordered(db, created["id"], waybill)
    return created


def decode(image: Image.Image) -> dict[str, str]:
    found = {r.format.name: r.text for r in zxingcpp.read_barcodes(image.convert("L"))}
    return {"barcode": found.get("Code128", ""), "qr": found.get("QRCode", "")}


def decode_png(data: bytes) -> dict[str, str]:
    return decode(Image.open(io.BytesIO(data)))


def decode_pdf_pages(data: bytes, dpi: int = 203) -> list[dict[str, str]]:
    doc = pdfium.PdfDocument(data)
    return [decode(page.render(scale=dpi / 72).to_pil()) for page in doc]


def pdf_text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    return "\n".join(page.get_textpage().get_text_range() for page in doc)


def zpl_blocks(zpl: str) -> list[str]:
    return re.findall(r"\^XA(.*?)\^XZ", zpl, re.S)


def zpl_symbols(block: str) -> dict[str, str]:
    """What the printer would encode: ^BC (Code128) and ^BQ (QR, after its "MA," mode prefix) field data."""
    barcode = re.search(r"\^BC[^\^]*\^FD([^\^]*)\^FS", block)
    qr = re.search(r"\^BQ[^\^]*\^FDMA,([^\^]*)\^FS", block)
    return {"barcode": barcode.group(1) if barcode else "", "qr": qr.group(1) if qr else ""}


def zpl_without_bitmaps(zpl: str) -> str:
    # Text is sent as ^GFA bitmaps in hex; a digit run in that hex says nothing about the text.
    return re.sub(r"\^GFA,[^\^]*", "^GFA", zpl)
