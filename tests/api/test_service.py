"""Service endpoints: health, readiness, request ids, OpenAPI, docs, metrics."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from logistics.api.schemas import ShipmentCreate


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


async def test_docs_page_and_metrics(api: TestClient) -> None:
    assert "openapi.json" in await (await api.get("/docs")).text()
    assert "logistics_http_requests_total" in await (await api.get("/metrics")).text()


async def test_unknown_route_and_method_are_problems(api: TestClient) -> None:
    missing = await api.get("/v2/anything")
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    wrong = await api.delete("/v1/shipments")
    assert wrong.status == 405 and wrong.content_type == "application/problem+json"
