"""Credentials at rest: API keys, staff tokens and applicant link tokens cannot be read back from the database.

Every column of every table is searched (JSON and text alike) for the plaintext after the credential was made
and used. Webhook secrets are the exception, necessarily: HMAC signing needs the secret itself, so it is stored
on the client row (and nowhere else); so is the 取件验证码, which the client may read again on GET.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from security_support import MARKET_BUREAU, advance, bearer
from sqlalchemy import select

from logistics.accounts import clients, staff
from logistics.domain.ids import hash_secret
from logistics.domain.tables import api_keys, metadata, scans, shipments, webhook_deliveries
from logistics.domain.tables import staff as staff_table
from logistics.storage.db import Database

from support import auth, delivery_body


async def columns_holding(db: Database, needle: str) -> list[str]:
    """``table.column`` of every stored value whose text contains ``needle``."""
    found: set[str] = set()
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is not None and needle in str(value):
                        found.add(f"{table.name}.{column}")
    return sorted(found)


async def awaiting_choice(api: TestClient, creds: clients.Credentials, **headers: str) -> dict[str, Any]:
    resp = await api.post(
        "/v1/shipments", json=delivery_body(recipient=None, applicant_choice=True), headers={**auth(creds), **headers}
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def token_of(shipment_or_link: dict[str, Any]) -> str:
    return str(shipment_or_link["applicant_url"]).rsplit("/a/", 1)[1]


async def test_api_keys_are_stored_only_as_hashes(api: TestClient, db: Database, hall: clients.Credentials) -> None:
    assert (await api.get("/v1/shipments", headers=auth(hall))).status == 200
    rotated = await clients.rotate_key(db, hall.id)
    assert (await api.get("/v1/shipments", headers=bearer(rotated))).status == 200
    for key in (hall.api_key, rotated):
        assert await columns_holding(db, key) == []
        assert await columns_holding(db, key[10:30]) == []  # not even the secret part without its prefix
    async with db.read() as conn:
        hashes = set((await conn.execute(select(api_keys.c.key_hash))).scalars())
    assert hashes == {hash_secret(hall.api_key), hash_secret(rotated)}


async def test_staff_tokens_are_stored_only_as_hashes(api: TestClient, db: Database) -> None:
    courier = await staff.create(db, "王建国", "courier", [MARKET_BUREAU])
    assert (await api.get("/v1/staff/me", headers=bearer(courier.token))).status == 200
    assert await columns_holding(db, courier.token) == []
    assert await columns_holding(db, courier.token[8:30]) == []  # the stored prefix is 8 characters, no more
    async with db.read() as conn:
        stored = (await conn.execute(select(staff_table.c.token_hash))).scalar_one()
    assert stored == hash_secret(courier.token)


async def test_applicant_link_tokens_are_stored_only_as_hashes(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting_choice(api, hall)
    assert (await api.get(f"/a/{token_of(shipment)}")).status == 200
    resp = await api.post(f"/v1/shipments/{shipment['id']}/applicant-link", headers=auth(hall))
    reissued = await resp.json()
    for token in (token_of(shipment), token_of(reissued)):
        assert await columns_holding(db, token) == []


async def test_an_idempotent_create_keeps_no_applicant_link_for_its_replay(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    shipment = await awaiting_choice(api, hall, **{"Idempotency-Key": "sj-spxt-2018-00131"})
    assert await columns_holding(db, token_of(shipment)) == []


async def test_a_replayed_create_answers_with_a_working_applicant_link(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    first = await awaiting_choice(api, hall, **{"Idempotency-Key": "sj-spxt-2018-00132"})
    resp = await api.post(
        "/v1/shipments",
        json=delivery_body(recipient=None, applicant_choice=True),
        headers={**auth(hall), "Idempotency-Key": "sj-spxt-2018-00132"},
    )
    assert resp.headers["Idempotent-Replayed"] == "true"
    replayed = await resp.json()
    assert replayed["id"] == first["id"]
    page = await api.get(f"/a/{token_of(replayed)}")
    assert page.status == 200
    assert await columns_holding(db, token_of(replayed)) == []


async def test_webhook_secrets_are_stored_on_the_client_row_only(db: Database, hall: clients.Credentials) -> None:
    # Necessarily recoverable: Standard Webhooks signs with HMAC, which needs the secret, not a hash of it.
    assert await columns_holding(db, hall.webhook_secret) == ["clients.webhook_secret"]


async def test_the_verification_code_is_kept_with_the_shipment_and_out_of_scans_and_webhooks(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    await clients.set_webhook(db, hall.id, "https://spxt.sj-zwfw.example/hooks/logistics")
    resp = await api.post("/v1/shipments", json=delivery_body(verification_code=True), headers=auth(hall))
    shipment = await resp.json()
    courier = await staff.create(db, "王建国", "courier", [MARKET_BUREAU])
    await advance(db, shipment["id"], "ordered", "picked_up", "out_for_delivery", waybill_no="1295780519876")
    scan = {"scan_id": "dev-0001", "code": shipment["tracking_code"], "action": "deliver"}
    code = shipment["verification_code"]
    resp = await api.post("/v1/scans", json={**scan, "verification_code": code}, headers=bearer(courier.token))
    assert resp.status == 200
    async with db.read() as conn:
        stored = (await conn.execute(select(shipments.c.verification_code))).scalar_one()
        scanned = list((await conn.execute(select(scans.c.response))).scalars())
        sent = list((await conn.execute(select(webhook_deliveries.c.payload))).scalars())
    assert stored == code
    assert sent and scanned
    assert code not in leaves(scanned) and code not in leaves(sent)


def leaves(value: Any) -> set[str]:
    """Every scalar in a JSON value, as text (a 6-digit code inside a timestamp is not a hit: whole values only)."""
    if isinstance(value, dict):
        return set().union(*(leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(leaves(v) for v in value)) if value else set()
    return {str(value)}
