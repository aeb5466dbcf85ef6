"""Every /v1 endpoint against every wrong credential.

The list of endpoints comes from the app's router and from the OpenAPI document, not from this file: a new route
is parametrized here automatically, and ``test_the_matrix_knows_how_to_call_every_v1_route`` fails until
``CALLS`` says how to call it. Which credential an endpoint takes comes from its OpenAPI ``security``.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from security_matrix import (
    ANOTHER_CLIENT,
    CALLS,
    CLIENT_OPS,
    DOCUMENTED,
    OUT_OF_SCOPE,
    ROUTED,
    STAFF_OPS,
    V1,
    assert_no_secrets,
    call,
    ids,
    scheme,
)
from security_support import HALL_WEBHOOK, PROBLEM, World, assert_problem, bearer

from support import auth


def test_the_matrix_knows_how_to_call_every_v1_route() -> None:
    unknown = sorted(op for op in V1 if op not in CALLS)
    assert not unknown, f"add these routes to CALLS (and their expectations): {unknown}"
    assert not [op for op in CLIENT_OPS if op not in ANOTHER_CLIENT]
    assert not [op for op in STAFF_OPS if op not in OUT_OF_SCOPE]


def test_every_v1_route_is_documented_with_a_known_security_scheme() -> None:
    assert ROUTED - DOCUMENTED == set(), "routes missing from /openapi.json"
    assert DOCUMENTED - ROUTED == set(), "documented operations without a route"
    assert [op for op in V1 if scheme(*op) == "unknown"] == []


@pytest.mark.parametrize("op", V1, ids=ids(V1))
async def test_no_credentials_is_a_401_problem(api: TestClient, world: World, op: tuple[str, str]) -> None:
    resp = await call(api, op, world, {})
    await assert_problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert_no_secrets(await resp.text(), world, op)


MALFORMED = ("Bearer", "Bearer    ", "Basic c2o6c3B4dA==", "Bearer lgk_revoked-or-made-up", "Bearer stk_made-up")


@pytest.mark.parametrize("op", V1, ids=ids(V1))
async def test_a_malformed_or_made_up_credential_is_a_401_problem(
    api: TestClient, world: World, op: tuple[str, str]
) -> None:
    for header in MALFORMED:
        await assert_problem(await call(api, op, world, {"Authorization": header}), 401)


@pytest.mark.parametrize("op", V1, ids=ids(V1))
async def test_the_owner_gets_through(api: TestClient, world: World, op: tuple[str, str]) -> None:
    """The calls are well formed: with the right credential they succeed (so the refusals below mean something)."""
    credential = bearer(world.courier.token) if scheme(*op) == "staff" else auth(world.hall)
    resp = await call(api, op, world, credential)
    assert 200 <= resp.status < 300, f"{op}: {resp.status} {await resp.text()}"


@pytest.mark.parametrize("op", CLIENT_OPS, ids=ids(CLIENT_OPS))
async def test_another_clients_key_never_reaches_the_halls_data(
    api: TestClient, world: World, op: tuple[str, str]
) -> None:
    status, check = ANOTHER_CLIENT[op]
    resp = await call(api, op, world, auth(world.other_hall))
    if status >= 400:
        await assert_problem(resp, status)
    else:
        assert resp.status == status, await resp.text()
        assert "Idempotent-Replayed" not in resp.headers
        assert check is not None
        check(await resp.json() if resp.content_type == "application/json" else await resp.text(), world)
    assert_no_secrets(await resp.text(), world, op)


@pytest.mark.parametrize("op", CLIENT_OPS, ids=ids(CLIENT_OPS))
async def test_another_clients_key_changes_nothing_of_the_hall(
    api: TestClient, world: World, op: tuple[str, str]
) -> None:
    await call(api, op, world, auth(world.other_hall))
    got = await (await api.get(f"/v1/shipments/{world.shipment['id']}", headers=auth(world.hall))).json()
    assert got["status"] == "ordered"
    endpoint = await (await api.get("/v1/webhook-endpoint", headers=auth(world.hall))).json()
    assert endpoint["url"] == HALL_WEBHOOK
    deliveries = await (await api.get("/v1/webhook-deliveries", headers=auth(world.hall))).json()
    assert {d["attempt_count"] for d in deliveries["data"]} == {0}


@pytest.mark.parametrize("op", CLIENT_OPS, ids=ids(CLIENT_OPS))
async def test_a_staff_token_does_not_open_client_endpoints(api: TestClient, world: World, op: tuple[str, str]) -> None:
    resp = await call(api, op, world, bearer(world.courier.token))
    await assert_problem(resp, (401, 403))
    assert_no_secrets(await resp.text(), world, op)


@pytest.mark.parametrize("op", STAFF_OPS, ids=ids(STAFF_OPS))
@pytest.mark.parametrize("whose", ["hall", "other_hall"])
async def test_a_client_api_key_does_not_open_staff_endpoints(
    api: TestClient, world: World, op: tuple[str, str], whose: str
) -> None:
    resp = await call(api, op, world, auth(getattr(world, whose)))
    await assert_problem(resp, (401, 403))
    assert_no_secrets(await resp.text(), world, op)


@pytest.mark.parametrize("op", STAFF_OPS, ids=ids(STAFF_OPS))
async def test_staff_of_another_hall_learn_nothing_about_the_parcel(
    api: TestClient, world: World, op: tuple[str, str]
) -> None:
    resp = await call(api, op, world, bearer(world.outsider.token))
    status = OUT_OF_SCOPE[op]
    if status >= 400:
        body = await assert_problem(resp, status)
        assert body["error"]["code"] == "not-your-hall"
        assert body["shipment"] is None
    else:
        assert resp.status == status
    assert_no_secrets(await resp.text(), world, op)


@pytest.mark.parametrize("op", V1, ids=ids(V1))
async def test_a_request_id_is_echoed_only_when_it_is_safe(api: TestClient, world: World, op: tuple[str, str]) -> None:
    """A request id with line breaks or markup is replaced, so it cannot forge log lines or inject into pages."""
    forged = '" level=error event=login_ok <script>alert(1)</script>'
    resp = await api.request(op[0], CALLS[op](world).path, headers={"X-Request-ID": forged})
    assert resp.headers["X-Request-ID"] != forged
    assert "<script>" not in await resp.text()
    assert resp.content_type == PROBLEM
