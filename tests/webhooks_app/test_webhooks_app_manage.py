"""Seeing and replaying what was sent: the client's API (/v1/webhook-deliveries, /v1/webhook-endpoint) and the
operator's CLI (clients set-webhook, clients rotate-secret, webhooks redeliver)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from webhooks_app_support import JOURNEY, Clock, Receiver, deliveries, drain, move, new_shipment

from logistics import cli
from logistics.accounts import clients
from logistics.jobs.runner import Runtime
from logistics.storage.db import Database

from support import auth

pytestmark = pytest.mark.usefixtures("wh_settings")
RunCli = Callable[..., Awaitable[tuple[int, str, str]]]


async def _delivered(db: Database, rt: Runtime, clock: Clock, client_id: str, *statuses: str) -> str:
    sid = await new_shipment(db, client_id)
    await move(db, sid, *statuses)
    await drain(rt, clock)
    return sid


async def test_list_shows_the_clients_deliveries_with_their_attempts(
    api: TestClient, db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials
) -> None:
    sid = await _delivered(db, rt, clock, subscribed.id, "picked_up", "in_transit")
    resp = await api.get("/v1/webhook-deliveries", headers=auth(subscribed))
    assert resp.status == 200
    body = await resp.json()
    assert [d["type"] for d in body["data"]] == ["shipment.in_transit", "shipment.picked_up"]  # newest first
    first = body["data"][0]
    assert (first["shipment_id"], first["status"], first["sequence"]) == (sid, "delivered", 3)
    assert [a["status_code"] for a in first["attempts"]] == [204]
    assert first["payload"]["data"]["tracking_url"].startswith("http://127.0.0.1:8080/t/")
    assert body["next_cursor"] is None


async def test_another_client_sees_none_of_them(
    api: TestClient,
    db: Database,
    rt: Runtime,
    clock: Clock,
    subscribed: clients.Credentials,
    other_hall: clients.Credentials,
) -> None:
    await _delivered(db, rt, clock, subscribed.id, "picked_up")
    resp = await api.get("/v1/webhook-deliveries", headers=auth(other_hall))
    assert (await resp.json())["data"] == []


async def test_filters_by_status_and_shipment(
    api: TestClient,
    db: Database,
    rt: Runtime,
    clock: Clock,
    subscribed: clients.Credentials,
    receiver: Receiver,
) -> None:
    ok = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    receiver.answer = lambda _: (500, {})
    stuck = await new_shipment(db, subscribed.id, case_no="410106-2018-00096")
    await move(db, stuck, "picked_up")
    await drain(rt, clock, limit=timedelta(minutes=1))
    pending = await (await api.get("/v1/webhook-deliveries?status=pending", headers=auth(subscribed))).json()
    assert [d["shipment_id"] for d in pending["data"]] == [stuck]
    assert len(pending["data"][0]["attempts"]) == 2
    one = await (await api.get(f"/v1/webhook-deliveries?shipment_id={ok}", headers=auth(subscribed))).json()
    assert [d["status"] for d in one["data"]] == ["delivered"]


async def test_cursor_pages_cover_every_delivery_once(
    api: TestClient, db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials
) -> None:
    await _delivered(db, rt, clock, subscribed.id, *JOURNEY)
    await _delivered(db, rt, clock, subscribed.id, "picked_up")
    seen: list[str] = []
    url = "/v1/webhook-deliveries?limit=2"
    while True:
        page = await (await api.get(url, headers=auth(subscribed))).json()
        seen += [d["id"] for d in page["data"]]
        if page["next_cursor"] is None:
            break
        url = f"/v1/webhook-deliveries?limit=2&cursor={page['next_cursor']}"
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize("query", ["status=sent", "limit=0", "limit=abc", "cursor=c2hwXzAx"])
async def test_bad_query_is_a_422_problem(api: TestClient, subscribed: clients.Credentials, query: str) -> None:
    resp = await api.get(f"/v1/webhook-deliveries?{query}", headers=auth(subscribed))
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"


async def test_list_needs_an_api_key(api: TestClient) -> None:
    assert (await api.get("/v1/webhook-deliveries")).status == 401


async def test_redeliver_via_api_sends_the_same_webhook_id_again(
    api: TestClient, db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    sid = await _delivered(db, rt, clock, subscribed.id, "delivered")
    (row,) = await deliveries(db, sid)
    resp = await api.post(f"/v1/webhook-deliveries/{row['id']}/redeliver", headers=auth(subscribed))
    assert resp.status == 202
    assert (await resp.json())["status"] == "pending"
    await drain(rt, clock)
    assert [r.msg_id for r in receiver.accepted()] == [row["id"], row["id"]]
    (after,) = await deliveries(db, sid)
    assert after["status"] == "delivered"


async def test_redeliver_another_clients_delivery_is_404(
    api: TestClient,
    db: Database,
    rt: Runtime,
    clock: Clock,
    subscribed: clients.Credentials,
    other_hall: clients.Credentials,
) -> None:
    sid = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    (row,) = await deliveries(db, sid)
    resp = await api.post(f"/v1/webhook-deliveries/{row['id']}/redeliver", headers=auth(other_hall))
    assert resp.status == 404
    assert (await api.get(f"/v1/webhook-deliveries/{row['id']}", headers=auth(other_hall))).status == 404


async def test_redeliver_while_the_endpoint_is_disabled_is_409(
    api: TestClient, db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = lambda _: (410, {})
    sid = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    (row,) = await deliveries(db, sid)
    resp = await api.post(f"/v1/webhook-deliveries/{row['id']}/redeliver", headers=auth(subscribed))
    assert resp.status == 409
    assert (await resp.json())["type"].endswith("/webhook-endpoint-disabled")


async def test_enabling_via_api_sends_what_was_skipped_in_order(
    api: TestClient, db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver
) -> None:
    receiver.answer = lambda _: (410, {})
    sid = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    await move(db, sid, "in_transit", "out_for_delivery")
    state = await (await api.get("/v1/webhook-endpoint", headers=auth(subscribed))).json()
    assert state["enabled"] is False

    receiver.answer = None
    resp = await api.post("/v1/webhook-endpoint/enable", headers=auth(subscribed))
    assert resp.status == 200
    body = await resp.json()
    assert (body["enabled"], body["replayed"]) == (True, 3)
    await drain(rt, clock)
    assert receiver.sequences_by_shipment(receiver.accepted()) == {sid: [2, 3, 4]}


async def test_openapi_documents_the_webhook_paths(api: TestClient) -> None:
    doc = await (await api.get("/openapi.json")).json()
    assert "/v1/webhook-deliveries/{id}/redeliver" in doc["paths"]
    assert "WebhookDeliveryOut" in doc["components"]["schemas"]


# The operator's CLI, run in a thread (it has its own event loop) against the test database.


@pytest.fixture
def run_cli(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> RunCli:
    monkeypatch.setenv("LOGISTICS_DATABASE_URL", db.url)
    monkeypatch.setenv("LOGISTICS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOGISTICS_WEBHOOK_ALLOW_LOOPBACK", "true")
    # The CLI would install its own log handler on the root logger, taking it from pytest.
    monkeypatch.setattr(cli.logs, "setup", lambda *a, **k: None)

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


async def test_cli_redeliver_by_id_keeps_the_webhook_id(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver, run_cli: RunCli
) -> None:
    sid = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    (row,) = await deliveries(db, sid)
    code, out, err = await run_cli("webhooks", "redeliver", "--client", subscribed.name, "--id", row["id"], "--json")
    assert code == 0, err
    assert json.loads(out) == {"queued": [row["id"]]}
    await drain(rt, clock)
    assert [r.msg_id for r in receiver.accepted()] == [row["id"], row["id"]]


async def test_cli_redeliver_since_queues_the_failed_ones_only(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver, run_cli: RunCli
) -> None:
    ok = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    receiver.answer = lambda _: (500, {})
    failed = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    assert [d["status"] for d in await deliveries(db, failed)] == ["failed"]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, out, err = await run_cli("webhooks", "redeliver", "--client", subscribed.id, "--since", since)
    assert code == 0, err
    assert out.strip() == "1 deliveries queued again (same webhook-id)"
    receiver.answer = None
    await drain(rt, clock)
    assert [d["status"] for d in await deliveries(db, failed)] == ["delivered"]
    assert len([r for r in receiver.accepted() if r.payload["data"]["id"] == ok]) == 1


async def test_cli_redeliver_of_an_unknown_id_is_a_clear_error(
    subscribed: clients.Credentials, run_cli: RunCli
) -> None:
    code, _, err = await run_cli(
        "webhooks", "redeliver", "--client", subscribed.id, "--id", "msg_01JD8Z9K4T6W2R8P5N3M7Q1B4X"
    )
    assert code == 2
    assert "no delivery" in err


async def test_cli_set_webhook_enables_and_sends_what_was_skipped(
    db: Database, rt: Runtime, clock: Clock, subscribed: clients.Credentials, receiver: Receiver, run_cli: RunCli
) -> None:
    receiver.answer = lambda _: (410, {})
    sid = await _delivered(db, rt, clock, subscribed.id, "picked_up")
    receiver.answer = None
    code, out, err = await run_cli("clients", "set-webhook", "--client", subscribed.name, "--enable", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "client": subscribed.id,
        "webhook_url": receiver.url,
        "disabled_at": None,
        "replayed": 1,
    }
    await drain(rt, clock)
    assert receiver.sequences_by_shipment(receiver.accepted()) == {sid: [2]}


async def test_cli_set_webhook_refuses_a_private_address(
    subscribed: clients.Credentials, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGISTICS_WEBHOOK_ALLOW_LOOPBACK", "false")
    code, _, err = await run_cli("clients", "set-webhook", "--client", subscribed.id, "--url", "http://10.1.2.3/hook")
    assert code == 2
    assert "not allowed" in err and "private" in err


async def test_cli_rotate_secret_prints_the_new_secret_and_keeps_the_old_one_a_day(
    db: Database, subscribed: clients.Credentials, run_cli: RunCli
) -> None:
    code, out, err = await run_cli("clients", "rotate-secret", "--client", subscribed.id, "--json")
    assert code == 0, err
    printed = json.loads(out)
    assert printed["webhook_secret"].startswith("whsec_")
    client = await clients.resolve(db, subscribed.id)
    assert client["webhook_secret"] == printed["webhook_secret"]
    assert client["webhook_secret_previous"] == subscribed.webhook_secret
    until = client["webhook_previous_until"]
    assert isinstance(until, datetime)
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
