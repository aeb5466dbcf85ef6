"""Statutory deadlines: due_by from the decision date in working days (holidays and 调休 counted), per
department from the halls file, and the overdue check with its one ``shipment.overdue`` webhook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from console_support import CIVIL, MARKET, create, move
from sqlalchemy import select, update

from logistics.accounts import clients
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.domain.deadlines import beijing_today, due_by
from logistics.domain.halls import HallsError, load_delivery_days
from logistics.domain.tables import shipments, utcnow, webhook_deliveries
from logistics.jobs.overdue import OVERDUE, mark_overdue
from logistics.storage.db import Database

from support import HALL, auth, delivery_body, intake_body


def test_ten_working_days_skip_the_national_day_holiday_and_count_the_make_up_saturday() -> None:
    # 2026: 中秋 25–27 September and 国庆 1–7 October are off; Saturday 10 October is a working day.
    deadline = due_by(date(2026, 9, 24), 10)
    assert deadline.due_by == date(2026, 10, 15)
    assert not deadline.provisional


def test_the_decision_day_itself_is_not_counted() -> None:
    assert due_by(date(2026, 11, 2), 1).due_by == date(2026, 11, 3)  # Monday → Tuesday
    assert due_by(date(2026, 11, 6), 1).due_by == date(2026, 11, 9)  # Friday → Monday


def test_a_year_the_calendar_does_not_cover_is_counted_monday_to_friday_and_marked_provisional(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadline = due_by(date(2026, 12, 28), 10)
    assert deadline == type(deadline)(date(2027, 1, 11), True)
    assert any(r.getMessage() == "deadline_calendar_not_covered" for r in caplog.records)


def write_halls(tmp_path: Path, halls: dict[str, Any]) -> Path:
    path = tmp_path / "halls.json"
    path.write_text(json.dumps(halls, ensure_ascii=False), encoding="utf-8")
    return path


def test_the_halls_file_sets_delivery_days_per_department(tmp_path: Path) -> None:
    path = write_halls(tmp_path, {MARKET: {**HALL, "delivery_days": 5}, CIVIL: HALL})
    assert load_delivery_days(path) == {MARKET: 5, CIVIL: 10}


@pytest.mark.parametrize("days", [0, "10", 10.5, True, 61])
def test_a_delivery_days_that_is_not_a_whole_number_of_days_is_refused(tmp_path: Path, days: object) -> None:
    with pytest.raises(HallsError, match="delivery_days must be a whole number"):
        load_delivery_days(write_halls(tmp_path, {MARKET: {**HALL, "delivery_days": days}}))


@pytest.fixture
async def halls_api(settings: Settings, db: Database, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings.halls_file = write_halls(tmp_path, {MARKET: {**HALL, "delivery_days": 5}, CIVIL: HALL})
    client = TestClient(TestServer(create_app(settings, db=db)))
    await client.start_server()
    yield client
    await client.close()


async def test_a_create_with_a_decision_date_gets_the_departments_deadline(
    halls_api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    decided = beijing_today(utcnow()) - timedelta(days=1)
    market = await create(halls_api, hall, decision_date=decided.isoformat())
    civil = await create(halls_api, hall, department=CIVIL, decision_date=decided.isoformat())
    assert market["due_by"] == due_by(decided, 5).due_by.isoformat()
    assert civil["due_by"] == due_by(decided, 10).due_by.isoformat()
    fetched = await (await halls_api.get(f"/v1/shipments/{market['id']}", headers=auth(hall))).json()
    assert (fetched["due_by"], fetched["overdue_at"]) == (market["due_by"], None)


async def test_a_create_may_give_due_by_itself(api: TestClient, hall: clients.Credentials) -> None:
    when = (beijing_today(utcnow()) + timedelta(days=12)).isoformat()
    assert (await create(api, hall, due_by=when))["due_by"] == when
    assert (await create(api, hall))["due_by"] is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"decision_date": "2026-11-02", "due_by": "2026-11-20"}, "due_by", "not both"),
        ({"decision_date": "2099-01-04"}, "decision_date", "future"),
        ({"due_by": "2020-01-06"}, "due_by", "past"),
        ({"decision_date": "2026-13-01"}, "decision_date", ""),
    ],
)
async def test_a_wrong_deadline_is_a_clear_422(
    api: TestClient, hall: clients.Credentials, change: dict[str, str], field: str, message: str
) -> None:
    resp = await api.post("/v1/shipments", json=delivery_body(**change), headers=auth(hall))
    assert resp.status == 422
    problem = await resp.json()
    assert any(e["field"] == field and message in e["message"] for e in problem["errors"]), problem


async def test_an_intake_has_no_delivery_deadline(api: TestClient, hall: clients.Credentials) -> None:
    resp = await api.post("/v1/shipments", json=intake_body(decision_date="2026-11-02"), headers=auth(hall))
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "decision_date"


async def set_due(db: Database, shipment_id: str, due: date) -> None:
    async with db.write() as conn:
        await conn.execute(update(shipments).where(shipments.c.id == shipment_id).values(due_by=due))


async def test_a_shipment_not_delivered_by_its_deadline_is_marked_overdue_once_with_one_webhook(
    api: TestClient, db: Database, hall: clients.Credentials
) -> None:
    await clients.set_webhook(db, hall.id, "https://sp.zzsj.gov.cn/hooks/logistics")
    today = beijing_today(utcnow())
    late = await create(api, hall)
    due_today = await create(api, hall)
    delivered = await create(api, hall)
    for shipment, due in (
        (late, today - timedelta(days=1)),
        (due_today, today),
        (delivered, today - timedelta(days=2)),
    ):
        await set_due(db, shipment["id"], due)
    await move(db, delivered["id"], "ordered", "picked_up", "in_transit", "out_for_delivery", "delivered")
    assert await mark_overdue(db) == 1
    assert await mark_overdue(db) == 0  # a second run (or a second worker) finds nothing left
    async with db.read() as conn:
        overdue = (
            (await conn.execute(select(shipments.c.id).where(shipments.c.overdue_at.is_not(None)))).scalars().all()
        )
        hooks = (await conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.type == OVERDUE))).all()
    assert overdue == [late["id"]]
    assert [(h.shipment_id, h.payload["data"]["due_by"]) for h in hooks] == [
        (late["id"], (today - timedelta(days=1)).isoformat())
    ]
    shown = await (await api.get(f"/v1/shipments/{late['id']}", headers=auth(hall))).json()
    assert shown["overdue_at"] is not None
