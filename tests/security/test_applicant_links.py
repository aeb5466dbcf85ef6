"""The applicant's choice link is a credential: it expires, works once, acts on its own shipment only, and a
link that is not exactly one we gave out is unknown (404)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from security_support import CHOOSING_APPLICANT, create
from sqlalchemy import select, update

from logistics.accounts import clients
from logistics.domain.tables import shipments, utcnow
from logistics.storage.db import Database

from support import auth, delivery_body

MAIL = {"choice": "mail", **CHOOSING_APPLICANT, "postcode": "450041"}
WINDOW = {"choice": "window"}


async def awaiting(api: TestClient, hall: clients.Credentials, case_no: str, item: str) -> dict[str, Any]:
    body = delivery_body(recipient=None, applicant_choice=True, cases=[{"case_no": case_no, "item_name": item}])
    return await create(api, hall, body)


def link(shipment: dict[str, Any]) -> str:
    return "/a/" + str(shipment["applicant_url"]).rsplit("/a/", 1)[1]


async def row(db: Database, shipment_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        found = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).one()
    return dict(found._mapping)


@pytest.fixture
async def licence(api: TestClient, hall: clients.Credentials) -> dict[str, Any]:
    return await awaiting(api, hall, "410106-2018-00131", "药品经营许可证变更")


@pytest.fixture
async def permit(api: TestClient, hall: clients.Credentials) -> dict[str, Any]:
    return await awaiting(api, hall, "410106-2018-00132", "排污许可证核发")


async def test_an_expired_link_is_gone_for_reading_and_for_choosing(
    api: TestClient, db: Database, licence: dict[str, Any]
) -> None:
    async with db.write() as conn:
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == licence["id"])
            .values(applicant_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await api.get(link(licence))).status == 410
    for form in (MAIL, WINDOW):
        resp = await api.post(link(licence), data=form)
        assert resp.status == 410
        assert "链接已过期" in await resp.text()
    after = await row(db, licence["id"])
    assert (after["status"], after["recipient"]) == ("awaiting_applicant", None)


@pytest.mark.parametrize(("first", "second"), [(MAIL, WINDOW), (WINDOW, MAIL), (MAIL, MAIL)])
async def test_a_link_used_once_is_gone(
    api: TestClient, db: Database, licence: dict[str, Any], first: dict[str, str], second: dict[str, str]
) -> None:
    assert (await api.post(link(licence), data=first)).status == 200
    before = await row(db, licence["id"])
    again = await api.post(link(licence), data={**second, "name": "冒名顶替"} if second is MAIL else second)
    assert again.status == 410
    assert "链接已使用" in await again.text()
    after = await row(db, licence["id"])
    assert (after["status"], after["recipient"], after["last_sequence"]) == (
        before["status"],
        before["recipient"],
        before["last_sequence"],
    )


async def test_a_link_acts_on_its_own_shipment_only(
    api: TestClient, db: Database, licence: dict[str, Any], permit: dict[str, Any]
) -> None:
    # Naming the other shipment in the form changes nothing: the token alone says which shipment it is.
    form = {**MAIL, "id": permit["id"], "shipment_id": permit["id"], "tracking_code": permit["tracking_code"]}
    resp = await api.post(link(licence), data=form)
    assert resp.status == 200
    assert (await row(db, licence["id"]))["status"] == "pending"
    other = await row(db, permit["id"])
    assert (other["status"], other["recipient"], other["applicant_used_at"]) == ("awaiting_applicant", None, None)
    assert (await api.get(link(permit))).status == 200


async def test_a_links_page_shows_its_own_shipment_only(
    api: TestClient, licence: dict[str, Any], permit: dict[str, Any]
) -> None:
    page = await (await api.get(link(licence))).text()
    assert "药品经营许可证变更" in page
    assert "排污许可证核发" not in page and permit["tracking_code"] not in page


def tampered(path: str) -> list[str]:
    token = path.removeprefix("/a/")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [
        f"/a/{flipped}",
        f"/a/{token[:-1]}",
        f"/a/{token}x",
        f"/a/{token.upper()}" if token.upper() != token else f"/a/{token.lower()}",
        f"/a/{token[:22]}",
        f"/a/{token}%00",
        f"/a/{token}%20",
        f"/a/{'A' * 43}",
        f"/a/{token * 3}",
    ]


async def test_a_tampered_link_is_unknown(api: TestClient, db: Database, licence: dict[str, Any]) -> None:
    for path in tampered(link(licence)):
        got = await api.get(path)
        assert got.status == 404, path
        assert "链接无效" in await got.text()
        assert licence["department"] not in await got.text()
        chose = await api.post(path, data=MAIL)
        assert chose.status == 404, path
    assert (await row(db, licence["id"]))["status"] == "awaiting_applicant"


async def test_a_reissued_link_retires_the_old_one(
    api: TestClient, hall: clients.Credentials, licence: dict[str, Any]
) -> None:
    resp = await api.post(f"/v1/shipments/{licence['id']}/applicant-link", headers=auth(hall))
    fresh = await resp.json()
    assert (await api.post(link(licence), data=WINDOW)).status == 404
    assert (await api.get(link(fresh))).status == 200
