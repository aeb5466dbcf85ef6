"""POST /v1/labels: many labels in one document, in the order given; refusals name the shipments."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from labels_app_support import BASE_URL, create, decode_pdf_pages, ordered, zpl_blocks, zpl_symbols

from logistics.accounts.clients import Credentials
from logistics.config import Settings
from logistics.storage.db import Database

from support import auth

WAYBILLS = ["1295780512501", "1295780512502", "1295780512503"]


async def _three(api: TestClient, db: Database, hall: Credentials) -> list[dict[str, object]]:
    return [await ordered(api, db, hall, waybill=w) for w in WAYBILLS]


async def test_batch_pdf_has_one_page_per_id_in_the_given_order(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await _three(api, db, hall)
    order = [made[2], made[0], made[1]]
    resp = await api.post("/v1/labels", json={"shipment_ids": [m["id"] for m in order]}, headers=auth(hall))
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    waybills = [WAYBILLS[2], WAYBILLS[0], WAYBILLS[1]]
    expected = [
        {"barcode": w, "qr": f"{BASE_URL}/t/{m['tracking_code']}"} for w, m in zip(waybills, order, strict=True)
    ]
    assert decode_pdf_pages(await resp.read()) == expected


async def test_batch_zpl_has_one_label_block_per_id_in_the_given_order(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    made = await _three(api, db, hall)
    ids = [made[1]["id"], made[2]["id"], made[0]["id"]]
    resp = await api.post(
        "/v1/labels", json={"shipment_ids": ids, "format": "zpl", "size": "100x180"}, headers=auth(hall)
    )
    assert resp.status == 200
    assert resp.content_type == "application/zpl"
    blocks = zpl_blocks(await resp.text())
    assert [zpl_symbols(b)["barcode"] for b in blocks] == [WAYBILLS[1], WAYBILLS[2], WAYBILLS[0]]


async def test_unknown_and_other_clients_ids_are_a_422_listing_them(
    api: TestClient, db: Database, hall: Credentials, other_hall: Credentials
) -> None:
    mine = await ordered(api, db, hall)
    theirs = await ordered(api, db, other_hall, waybill="1295780512600")
    missing = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"
    resp = await api.post("/v1/labels", json={"shipment_ids": [mine["id"], theirs["id"], missing]}, headers=auth(hall))
    assert resp.status == 422
    errors = (await resp.json())["errors"]
    assert [e["field"] for e in errors] == ["shipment_ids[1]", "shipment_ids[2]"]
    assert theirs["id"] in errors[0]["message"] and missing in errors[1]["message"]


async def test_ids_without_a_waybill_are_a_409_listing_them(api: TestClient, db: Database, hall: Credentials) -> None:
    ready = await ordered(api, db, hall)
    pending = await create(api, hall)
    resp = await api.post("/v1/labels", json={"shipment_ids": [ready["id"], pending["id"]]}, headers=auth(hall))
    assert resp.status == 409
    body = await resp.json()
    assert body["type"].endswith("/label-not-ready")
    assert [e["field"] for e in body["errors"]] == ["shipment_ids[1]"]
    assert pending["id"] in body["errors"][0]["message"]


async def test_png_is_not_a_batch_format(api: TestClient, db: Database, hall: Credentials) -> None:
    made = await ordered(api, db, hall)
    resp = await api.post("/v1/labels", json={"shipment_ids": [made["id"]], "format": "png"}, headers=auth(hall))
    assert resp.status == 422
    assert [e["field"] for e in (await resp.json())["errors"]] == ["format"]


async def test_more_ids_than_the_batch_limit_are_refused(
    api: TestClient, settings: Settings, hall: Credentials
) -> None:
    ids = [f"shp_01JD8Z6Q2M4X7V3K9T1R5N{n:04d}" for n in range(settings.label_batch_max + 1)]
    resp = await api.post("/v1/labels", json={"shipment_ids": ids}, headers=auth(hall))
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "shipment_ids"


async def test_an_empty_id_list_is_refused(api: TestClient, hall: Credentials) -> None:
    resp = await api.post("/v1/labels", json={"shipment_ids": []}, headers=auth(hall))
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"


async def test_batch_with_a_list_for_size_is_a_422_not_a_500(api: TestClient, hall: Credentials) -> None:
    resp = await api.post(
        "/v1/labels",
        json={"shipment_ids": ["shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"], "size": [["100x150"]], "format": {"pdf": 1}},
        headers=auth(hall),
    )
    assert resp.status == 422
    assert {e["field"] for e in (await resp.json())["errors"]} >= {"size", "format"}
