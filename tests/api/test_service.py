"""Service endpoints: health, readiness, request ids, OpenAPI, docs, metrics."""

from __future__ import annotations

import gc
import html
import logging
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from labels import DEFAULT_DPI, DEFAULT_SIZE, FORMATS, SIZES, SUPPORTED_DPI
from logistics.api.app import create_app
from logistics.api.docs import operation_html
from logistics.api.openapi import PAGE_MAX, id_param
from logistics.api.schemas import ShipmentCreate
from logistics.config import Settings
from logistics.domain import ids
from logistics.storage.db import Database


async def test_healthz(api: TestClient) -> None:
    resp = await api.get("/healthz")
    assert resp.status == 200


async def test_readyz_checks_database_and_redis(api: TestClient) -> None:
    resp = await api.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["checks"] == {"database": "ok", "redis": "ok"}


async def test_request_id_is_echoed_or_generated(api: TestClient) -> None:
    given = await api.get("/healthz", headers={"X-Request-ID": "sj-spxt-7f3a9c"})
    assert given.headers["X-Request-ID"] == "sj-spxt-7f3a9c"
    made = await api.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32


async def test_openapi_is_3_1_and_uses_the_validating_model(api: TestClient) -> None:
    doc = await (await api.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    create = doc["paths"]["/v1/shipments"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ShipmentCreate")
    assert doc["components"]["schemas"]["ShipmentCreate"]["required"] == [
        k for k, f in ShipmentCreate.model_fields.items() if f.is_required()
    ]


async def test_the_docs_page_shows_every_operation_of_the_openapi_document(api: TestClient) -> None:
    doc = await (await api.get("/openapi.json")).json()
    resp = await api.get("/docs")
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    operations = [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 16
    for method, path, op in operations:
        section = page.split(f'<section id="{op["operationId"]}">', 1)[1].split("</section>", 1)[0]
        assert f"{method.upper()}</span> <code>{html.escape(path)}</code>" in section
        assert all(f"<dt><code>{code}</code></dt>" in section for code in op["responses"])
    assert '"title": "ShipmentCreate"' in html.unescape(page)  # the create's body schema, shown in full


LIST_OPERATIONS = {"/v1/shipments": "ShipmentPage", "/v1/webhook-deliveries": "WebhookDeliveryPage",
                   "/v1/complaints": "ComplaintPage"}


@pytest.mark.parametrize(("path", "page"), LIST_OPERATIONS.items())
async def test_every_list_operation_documents_its_filters_then_limit_and_cursor(
    api: TestClient, path: str, page: str
) -> None:
    doc = await (await api.get("/openapi.json")).json()
    listing = doc["paths"][path]["get"]
    assert [p["name"] for p in listing["parameters"]][-2:] == ["limit", "cursor"]
    assert listing["parameters"][-2]["schema"] == {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{page}")


async def test_the_label_operations_offer_what_the_renderers_accept(api: TestClient) -> None:
    doc = await (await api.get("/openapi.json")).json()
    query = {p["name"]: p["schema"] for p in doc["paths"]["/v1/shipments/{id}/label"]["get"]["parameters"]}
    assert query["dpi"] == {"enum": list(SUPPORTED_DPI), "default": DEFAULT_DPI}
    assert query["size"] == {"enum": list(SIZES), "default": DEFAULT_SIZE}
    assert query["format"]["enum"] == list(FORMATS)


def test_an_id_parameter_admits_the_ids_of_its_resource_only() -> None:
    pattern = re.compile(id_param("shp")["schema"]["pattern"])
    assert pattern.fullmatch(ids.shipment_id())
    assert not pattern.fullmatch("msg_01JD8Z6Q2M4X7V3K9T1R5N8B2C")


async def test_the_docs_page_runs_no_script_and_allows_none(api: TestClient) -> None:
    resp = await api.get("/docs")
    assert "<script" not in await resp.text()
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "unsafe-inline" not in policy
    css = await api.get("/static/docs.css")
    assert css.status == 200 and css.content_type == "text/css"


def test_docs_text_is_escaped() -> None:
    op = {
        "operationId": "probe",
        "summary": "<script>alert(1)</script>",
        "parameters": [{"name": "q&a", "in": "query", "schema": {"pattern": "^<b>$"}}],
        "responses": {"200": {"description": "<i>ok</i>"}},
    }
    rendered = operation_html("get", "/v1/<x>", op, {"components": {"schemas": {}}})
    assert "<script>" not in rendered and "<i>" not in rendered and "<b>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered and "q&amp;a" in rendered


async def test_metrics_are_served_for_prometheus(api: TestClient) -> None:
    assert "logistics_http_requests_total" in await (await api.get("/metrics")).text()


async def test_unknown_route_and_method_are_problems(api: TestClient) -> None:
    missing = await api.get("/v2/anything")
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    wrong = await api.delete("/v1/shipments")
    assert wrong.status == 405 and wrong.content_type == "application/problem+json"


async def test_the_collector_is_tuned_once_the_api_runs(api: TestClient) -> None:
    # Objects of the startup are frozen out of the collector's sight; young ones are collected less often.
    assert (await api.get("/healthz")).status == 200
    assert gc.get_threshold()[0] == 10_000
    assert gc.get_freeze_count() > 0


async def test_one_access_line_per_request_unless_turned_off(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # On by default at the default level, INFO; LOGISTICS_ACCESS_LOG=false turns it off.
    assert settings.access_log and settings.log_level == "INFO"
    for access_log, expected in ((True, 1), (False, 0)):
        settings.access_log = access_log
        client = TestClient(TestServer(create_app(settings, db=db)))
        await client.start_server()
        try:
            caplog.clear()
            with caplog.at_level(logging.INFO):
                await client.get("/healthz", headers={"X-Request-ID": "access-1"})
        finally:
            await client.close()
        lines = [r for r in caplog.records if r.getMessage() == "http_request"]
        assert len(lines) == expected, access_log
        if lines:
            assert (lines[0].route, lines[0].status, lines[0].request_id) == ("/healthz", 200, "access-1")  # type: ignore[attr-defined]
