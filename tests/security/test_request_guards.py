"""Guards in front of the handlers: the people's forms take posts only from their own pages, /metrics answers
only the addresses allowed to read business volume, and /readyz says what is down without the driver's words."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from security_support import CHOOSING_APPLICANT, World, assert_problem
from sqlalchemy import func, select

from logistics.api.app import create_app
from logistics.config import Settings
from logistics.domain.tables import complaints
from logistics.storage.db import Database

OWN_ORIGIN = "http://127.0.0.1:8080"  # the settings fixture's public base URL
COMPLAINT = {"category": "delay", "text": "快递三天没有动静，请帮忙查一下。"}
CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://other.127.0.0.1.example"},
    {"Sec-Fetch-Site": "cross-site", "Origin": OWN_ORIGIN},  # the browser's word on where the page was wins
]


async def complaint_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(complaints))).scalar_one())


def applicant_link(world: World) -> str:
    return "/a/" + world.awaiting["applicant_url"].rsplit("/a/", 1)[1]


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_a_complaint_posted_from_another_site_is_refused(
    api: TestClient, db: Database, world: World, headers: dict[str, str]
) -> None:
    before = await complaint_count(db)
    resp = await api.post(f"/t/{world.shipment['tracking_code']}/complaints", data=COMPLAINT, headers=headers)
    assert resp.status == 403 and resp.content_type == "text/html"
    assert "只能在本站页面上提交" in await resp.text()
    assert await complaint_count(db) == before


async def test_a_json_complaint_from_another_site_is_a_403_problem(api: TestClient, world: World) -> None:
    resp = await api.post(
        f"/t/{world.shipment['tracking_code']}/complaints",
        json=COMPLAINT,
        headers={"Origin": "https://evil.example", "Accept": "application/json"},
    )
    body = await assert_problem(resp, 403)
    assert body["type"].endswith("/cross-origin")


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_an_applicant_choice_posted_from_another_site_is_refused(
    api: TestClient, world: World, headers: dict[str, str]
) -> None:
    link = applicant_link(world)
    resp = await api.post(link, data={"choice": "mail", **CHOOSING_APPLICANT}, headers=headers)
    assert resp.status == 403
    assert (await api.get(link)).status == 200  # still open: nothing was chosen


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": OWN_ORIGIN, "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {},  # not a browser acting for someone else
    ],
)
async def test_the_forms_posted_from_their_own_pages_are_taken(
    api: TestClient, db: Database, world: World, headers: dict[str, str]
) -> None:
    before = await complaint_count(db)
    resp = await api.post(f"/t/{world.shipment['tracking_code']}/complaints", data=COMPLAINT, headers=headers)
    assert resp.status == 200, await resp.text()
    assert await complaint_count(db) == before + 1
    chosen = await api.post(applicant_link(world), data={"choice": "window"}, headers=headers)
    assert chosen.status == 200


async def test_a_form_posted_to_the_address_the_browser_used_is_taken(api: TestClient, world: World) -> None:
    own = f"http://{api.host}:{api.port}"  # the server's own origin, though the public base URL differs
    resp = await api.post(applicant_link(world), data={"choice": "window"}, headers={"Origin": own})
    assert resp.status == 200


# /metrics


@pytest.fixture
async def serve(db: Database) -> AsyncIterator[object]:
    clients: list[TestClient] = []

    async def start(settings: Settings, database: Database = db) -> TestClient:
        client = TestClient(TestServer(create_app(settings, db=database)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def test_metrics_answer_loopback_by_default(api: TestClient) -> None:
    resp = await api.get("/metrics")
    assert resp.status == 200 and "logistics_http_requests_total" in await resp.text()


@pytest.mark.parametrize("allowed", ["10.0.0.0/8", "192.0.2.7, 2001:db8::/32"])
async def test_metrics_refuse_an_address_not_allowed(serve, settings: Settings, allowed: str) -> None:  # type: ignore[no-untyped-def]
    api = await serve(settings.model_copy(update={"metrics_allow": allowed}))
    resp = await api.get("/metrics")
    await assert_problem(resp, 403)
    assert "logistics_http_requests_total" not in await resp.text()


async def test_metrics_do_not_believe_a_forwarded_address_unless_told_to(serve, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    api = await serve(settings.model_copy(update={"metrics_allow": "10.0.0.0/8"}))
    assert (await api.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})).status == 403
    proxied = await serve(settings.model_copy(update={"metrics_allow": "10.0.0.0/8", "trust_forwarded_for": True}))
    assert (await proxied.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})).status == 200
    assert (await proxied.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status == 403


# /readyz


async def test_readyz_names_what_is_down_without_the_drivers_text(  # type: ignore[no-untyped-def]
    serve, settings: Settings, database_url: str, tmp_path
) -> None:
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'logistics.db'}"
    else:
        url = "postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:1/nowhere"  # nothing listens on port 1
    down = Database(url)
    if database_url.startswith("sqlite"):  # the data directory is replaced by a file after the start
        shutil.rmtree(tmp_path / "missing-dir")
        (tmp_path / "missing-dir").write_text("not a directory")
    try:
        api = await serve(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), down)
        resp = await api.get("/readyz")
        text = await resp.text()
    finally:
        await down.dispose()
    assert resp.status == 503
    assert (await resp.json())["checks"] == {"database": "database unreachable", "redis": "redis unreachable"}
    for leak in ("missing-dir", "127.0.0.1", "nowhere", "s3cret", "Error", "refused"):
        assert leak not in text
