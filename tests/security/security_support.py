"""Helpers for the security tests: distinctive personal data, credentials, problem checks and the shipments a
hall owns (a module name of its own: test folders here are not packages).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from logistics.accounts import clients, staff
from logistics.domain.events import apply_event, lock_shipment
from logistics.domain.tables import follow_ups, shipments, webhook_deliveries
from logistics.storage.db import Database

from support import auth, delivery_body

MARKET_BUREAU = "上街区市场监督管理局"
PROBLEM = "application/problem+json"
HALL_WEBHOOK = "https://spxt.sj-zwfw.example/hooks/logistics"

# People whose data must never leave the owning client: compound surnames and full numbers that occur nowhere
# else in the code base, so a hit in a log or a response can only be theirs.
LICENCE_HOLDER = {
    "name": "司马青霞",
    "phone": "13598765432",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "济源路街道工业路17号院6号楼1单元1203室",
}
INTAKE_APPLICANT = {
    "name": "上官明轩",
    "phone": "18638211975",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "峡窝镇后真村四组28号",
}
CHOOSING_APPLICANT = {
    "name": "东方秀兰",
    "phone": "15037163928",
    "province": "河南省",
    "city": "郑州市",
    "district": "上街区",
    "address": "矿山街道金华路66号院2号楼3单元402室",
}
PEOPLE = (LICENCE_HOLDER, INTAKE_APPLICANT, CHOOSING_APPLICANT)
# What must not leak: each name, each phone's full digits, each full street/room string.
PERSONAL_DATA = tuple(value for person in PEOPLE for value in (person["name"], person["phone"], person["address"]))

# Internal detail that never belongs in an error body.
INTERNALS = re.compile(
    r"Traceback|File \"|sqlalchemy|asyncpg|aiosqlite|sqlite3|psycopg|IntegrityError|OperationalError|"
    r"KeyError|TypeError|AttributeError|site-packages|/logistics/|SELECT .* FROM|INSERT INTO|UPDATE \S+ SET"
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_problem(resp: ClientResponse, status: int | tuple[int, ...]) -> dict[str, Any]:
    """An RFC 9457 problem with the expected status, and nothing internal in it."""
    wanted = (status,) if isinstance(status, int) else status
    text = await resp.text()
    assert resp.status in wanted, f"{resp.method} {resp.url.path}: {resp.status} {text[:500]}"
    assert resp.content_type == PROBLEM, f"{resp.url.path}: {resp.content_type}"
    assert not INTERNALS.search(text), f"{resp.url.path} leaks internals: {text[:500]}"
    body: dict[str, Any] = await resp.json(content_type=PROBLEM)
    assert body["status"] == resp.status
    assert body["type"].startswith("https://") and body["title"]
    return body


@dataclass
class World:
    """What the hall owns, for calling every endpoint as its owner and as somebody else."""

    hall: clients.Credentials
    other_hall: clients.Credentials
    courier: staff.NewStaff
    outsider: staff.NewStaff
    shipment: dict[str, Any]  # ordered, with a waybill and a 取件验证码
    awaiting: dict[str, Any]  # waiting for the applicant's choice
    delivery_id: str
    complaint_text: str
    returned: dict[str, Any] = field(default_factory=dict)  # refused and back at the hall: resend/resolve it
    delivered: dict[str, Any] = field(default_factory=dict)  # signed for: it has a proof of service
    follow_up_id: str = ""  # the delivered shipment was rated 非常不满意: its open follow-up

    def secrets(self) -> tuple[str, ...]:
        """The hall's data that another client, or a staff member out of scope, must never see."""
        return (
            self.shipment["id"],
            self.shipment["tracking_code"],
            self.shipment["verification_code"],
            self.awaiting["id"],
            self.delivered["id"],
            self.delivery_id,
            HALL_WEBHOOK,
            self.complaint_text,
            self.follow_up_id,
            *PERSONAL_DATA,
        )


async def create(api: TestClient, creds: clients.Credentials, body: dict[str, Any]) -> dict[str, Any]:
    resp = await api.post("/v1/shipments", json=body, headers=auth(creds))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def advance(db: Database, shipment_id: str, *statuses: str, **fields: Any) -> None:
    """Move a shipment as the carrier would (the same function every status change goes through)."""
    async with db.write() as conn:
        if fields:
            from sqlalchemy import update

            await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(**fields))
        for status in statuses:
            row = await lock_shipment(conn, shipment_id)
            assert row is not None
            await apply_event(conn, row, status=status, source="carrier_push")


async def build_world(api: TestClient, db: Database, hall: clients.Credentials, other: clients.Credentials) -> World:
    await clients.set_webhook(db, hall.id, HALL_WEBHOOK)
    shipment = await create(api, hall, delivery_body(recipient=dict(LICENCE_HOLDER)))
    await advance(db, shipment["id"], "ordered", waybill_no="1295780519876")
    awaiting = await create(
        api,
        hall,
        delivery_body(
            recipient=None,
            applicant_choice=True,
            cases=[{"case_no": "410106-2018-00131", "item_name": "药品经营许可证变更"}],
        ),
    )
    complaint_text = f"快递员打电话说找不到地址，我的电话{LICENCE_HOLDER['phone']}一直开着。"
    resp = await api.post(
        f"/t/{shipment['tracking_code']}/complaints", json={"category": "delay", "text": complaint_text}
    )
    assert resp.status == 201, await resp.text()
    async with db.read() as conn:
        delivery_id = (
            await conn.execute(
                select(webhook_deliveries.c.id).where(webhook_deliveries.c.shipment_id == shipment["id"]).limit(1)
            )
        ).scalar_one()
    delivered = await create(api, hall, delivery_body(recipient=dict(LICENCE_HOLDER)))
    await advance(db, delivered["id"], "ordered", "picked_up", "delivered", waybill_no="1295780519880")
    rated = await api.post(f"/t/{delivered['tracking_code']}/rating", json={"level": 1, "comment": "等了一周"})
    assert rated.status == 201, await rated.text()
    async with db.read() as conn:
        follow_up_id = (await conn.execute(select(follow_ups.c.id))).scalar_one()
    courier = await staff.create(db, "王建国", "courier", [MARKET_BUREAU])
    outsider = await staff.create(db, "赵磊", "courier", ["二七区税务局"])
    returned = await create(
        api, hall, delivery_body(cases=[{"case_no": "410106-2018-00152", "item_name": "食品经营许可证延续"}])
    )
    await advance(db, returned["id"], "ordered", "picked_up", "delivery_failed", "returning", "returned")
    return World(
        hall,
        other,
        courier,
        outsider,
        {**shipment, "waybill_no": "1295780519876"},
        awaiting,
        delivery_id,
        complaint_text,
        returned=returned,
        delivered=delivered,
        follow_up_id=follow_up_id,
    )


@contextlib.asynccontextmanager
async def refusing_shipment_writes(db: Database, statement: str) -> AsyncIterator[None]:
    """The shipments table refuses every ``statement`` (INSERT or UPDATE), as a full disk or a broken replica
    would, on either database."""
    name = f"refuse_{statement.lower()}s"
    async with db.write() as conn:
        if db.is_sqlite:
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE {statement} ON shipments "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$"
                )
            )
            await conn.execute(
                text(f"CREATE TRIGGER {name} BEFORE {statement} ON shipments FOR EACH ROW EXECUTE FUNCTION {name}()")
            )
    try:
        yield
    finally:
        async with db.write() as conn:
            if db.is_sqlite:
                await conn.execute(text(f"DROP TRIGGER {name}"))
            else:
                await conn.execute(text(f"DROP TRIGGER {name} ON shipments"))
                await conn.execute(text(f"DROP FUNCTION {name}()"))


def refusing_shipment_inserts(db: Database) -> contextlib.AbstractAsyncContextManager[None]:
    return refusing_shipment_writes(db, "INSERT")
