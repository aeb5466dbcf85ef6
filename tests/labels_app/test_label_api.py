"""GET /v1/shipments/{id}/label over real HTTP, on both databases: decodable in every format, cached by content."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from labels_app_support import (
    BASE_URL,
    SECRET_CODE,
    WAYBILL,
    create,
    decode_pdf_pages,
    decode_png,
    mark_ordered,
    ordered,
    pdf_text,
    zpl_blocks,
    zpl_symbols,
    zpl_without_bitmaps,
)
from sqlalchemy import func, select, update

from logistics import label_store
from logistics.accounts.clients import Credentials
from logistics.domain.tables import label_renders, shipments
from logistics.storage.db import Database

from support import auth


def _url(created: dict[str, object]) -> str:
    return f"{BASE_URL}/t/{created['tracking_code']}"


async def test_label_is_a_409_problem_until_a_waybill_exists(api: TestClient, hall: Credentials) -> None:
    created = await create(api, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label", headers=auth(hall))
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"].endswith("/label-not-ready")


async def test_shipment_json_has_the_label_url_once_ordered(api: TestClient, db: Database, hall: Credentials) -> None:
    created = await create(api, hall)
    assert created["label_url"] is None
    await mark_ordered(db, created["id"])
    body = await (await api.get(f"/v1/shipments/{created['id']}", headers=auth(hall))).json()
    assert body["label_url"] == f"{BASE_URL}/v1/shipments/{created['id']}/label"


@pytest.mark.parametrize("dpi", [203, 300])
async def test_png_label_decodes_to_the_waybill_and_tracking_url(
    api: TestClient, db: Database, hall: Credentials, dpi: int
) -> None:
    created = await ordered(api, db, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label?format=png&dpi={dpi}", headers=auth(hall))
    assert resp.status == 200
    assert resp.content_type == "image/png"
    assert decode_png(await resp.read()) == {"barcode": WAYBILL, "qr": _url(created)}


async def test_pdf_label_rasterised_at_203_dpi_decodes_to_the_waybill_and_tracking_url(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    created = await ordered(api, db, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label", headers=auth(hall))
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert decode_pdf_pages(await resp.read()) == [{"barcode": WAYBILL, "qr": _url(created)}]


async def test_zpl_label_encodes_the_waybill_and_tracking_url(api: TestClient, db: Database, hall: Credentials) -> None:
    created = await ordered(api, db, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label?format=zpl&size=76x130", headers=auth(hall))
    assert resp.status == 200
    assert resp.content_type == "application/zpl"
    blocks = zpl_blocks(await resp.text())
    assert [zpl_symbols(b) for b in blocks] == [{"barcode": WAYBILL, "qr": _url(created)}]


async def test_another_clients_label_is_not_found(
    api: TestClient, db: Database, hall: Credentials, other_hall: Credentials
) -> None:
    created = await ordered(api, db, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label", headers=auth(other_hall))
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("/not-found")


@pytest.mark.parametrize(
    ("query", "field"),
    [("format=jpeg", "query.format"), ("size=A4", "query.size"), ("format=png&dpi=600", "query.dpi")],
)
async def test_a_bad_format_size_or_dpi_is_a_422_problem(
    api: TestClient, db: Database, hall: Credentials, query: str, field: str
) -> None:
    created = await ordered(api, db, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label?{query}", headers=auth(hall))
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert [e["field"] for e in (await resp.json())["errors"]] == [field]


async def test_if_none_match_with_the_etag_gives_304(api: TestClient, db: Database, hall: Credentials) -> None:
    created = await ordered(api, db, hall)
    path = f"/v1/shipments/{created['id']}/label?format=png"
    first = await api.get(path, headers=auth(hall))
    etag = first.headers["ETag"]
    again = await api.get(path, headers={**auth(hall), "If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    assert await again.read() == b""


async def test_a_second_request_serves_the_stored_bytes_without_rendering(
    api: TestClient, db: Database, hall: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    real = label_store.render_one
    monkeypatch.setattr(
        label_store, "render_one", lambda label, *a: renders.append(label.waybill_no) or real(label, *a)
    )
    created = await ordered(api, db, hall)
    path = f"/v1/shipments/{created['id']}/label"
    first = await api.get(path, headers=auth(hall))
    second = await api.get(path, headers=auth(hall))
    assert await first.read() == await second.read()
    assert first.headers["ETag"] == second.headers["ETag"]
    assert renders == [WAYBILL]


async def test_changed_label_data_renders_again_under_a_new_hash(
    api: TestClient, db: Database, hall: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    real = label_store.render_one
    monkeypatch.setattr(
        label_store, "render_one", lambda label, *a: renders.append(label.destination_name) or real(label, *a)
    )
    created = await ordered(api, db, hall)
    path = f"/v1/shipments/{created['id']}/label"
    before = await api.get(path, headers=auth(hall))
    async with db.write() as conn:
        await conn.execute(update(shipments).where(shipments.c.id == created["id"]).values(destination_name="郑州巩义"))
    after = await api.get(path, headers=auth(hall))
    assert after.headers["ETag"] != before.headers["ETag"]
    assert await after.read() != await before.read()
    assert renders == ["郑州上街", "郑州巩义"]
    async with db.read() as conn:  # the stored render was replaced, not added to
        assert (await conn.execute(select(func.count()).select_from(label_renders))).scalar_one() == 1


async def test_the_verification_code_is_not_in_the_pdf_text(api: TestClient, db: Database, hall: Credentials) -> None:
    created = await ordered(api, db, hall)
    shown = await (await api.get(f"/v1/shipments/{created['id']}", headers=auth(hall))).json()
    assert shown["verification_code"] == SECRET_CODE  # the client sees it …
    pdf = await (await api.get(f"/v1/shipments/{created['id']}/label", headers=auth(hall))).read()
    text = pdf_text(pdf)
    assert WAYBILL in text  # … the label's text is extractable, and the code is not in it
    assert SECRET_CODE not in text


async def test_the_verification_code_is_not_in_the_zpl(api: TestClient, db: Database, hall: Credentials) -> None:
    created = await ordered(api, db, hall)
    resp = await api.get(f"/v1/shipments/{created['id']}/label?format=zpl", headers=auth(hall))
    assert SECRET_CODE not in zpl_without_bitmaps(await resp.text())


async def test_the_applicants_name_and_phone_are_masked_on_the_pdf(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    created = await ordered(api, db, hall)
    text = pdf_text(await (await api.get(f"/v1/shipments/{created['id']}/label", headers=auth(hall))).read())
    assert "欧阳娜娜" not in text and "13803712345" not in text
    assert "欧阳**" in text
    assert "上街区政务服务中心" in text  # the hall is an organisation: shown in full


async def test_the_openapi_document_describes_both_label_paths(api: TestClient) -> None:
    paths = (await (await api.get("/openapi.json")).json())["paths"]
    assert set(paths["/v1/shipments/{id}/label"]["get"]["responses"]) >= {"200", "304", "404", "409", "422"}
    assert "409" in paths["/v1/labels"]["post"]["responses"]
