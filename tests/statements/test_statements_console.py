"""/console/statements: a clerk downloads the month of one of their departments (every client's shipments), and
nothing of another department."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from statement_support import CIVIL, MARKET, Make, ids_of, read_csv

from logistics.accounts import staff
from logistics.accounts.clients import Credentials

from support import sign_in


async def test_the_form_offers_the_clerks_departments_and_last_month(api: TestClient, clerk: staff.NewStaff) -> None:
    await sign_in(api, clerk.token)
    resp = await api.get("/console/statements")
    page = await resp.text()
    assert resp.status == 200
    assert f'<option value="{MARKET}" selected>' in page and f'<option value="{CIVIL}">' in page
    assert 'type="month" id="month" name="month" value="20' in page
    assert 'id="nav-statements"' in page


async def test_a_clerk_downloads_every_clients_shipments_of_their_department(
    api: TestClient, clerk: staff.NewStaff, other_hall: Credentials, make: Make
) -> None:
    ours = await make("1295780512499", "2026-11-10 09:00")
    theirs = await make("1295780512502", "2026-11-10 09:30", creds=other_hall)
    await make("1295780512516", "2026-11-11 09:00", department="二七区税务局")
    await sign_in(api, clerk.token)
    resp = await api.get("/console/statements", params={"department": MARKET, "month": "2026-11"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert ids_of(read_csv(await resp.read())) == [ours, theirs]


async def test_another_department_is_refused_on_the_form_without_its_rows(
    api: TestClient, clerk: staff.NewStaff, make: Make
) -> None:
    theirs = await make("1295780512516", "2026-11-11 09:00", department="二七区税务局")
    await sign_in(api, clerk.token)
    resp = await api.get("/console/statements", params={"department": "二七区税务局", "month": "2026-11"})
    page = await resp.text()
    assert resp.status == 400 and resp.content_type == "text/html"
    assert 'id="department-error"' in page and "请选择您所属的部门" in page
    assert theirs not in page and "1295780512516" not in page


async def test_a_malformed_month_is_shown_next_to_the_field(api: TestClient, clerk: staff.NewStaff) -> None:
    await sign_in(api, clerk.token)
    resp = await api.get("/console/statements", params={"department": CIVIL, "month": "11/2026"})
    page = await resp.text()
    assert resp.status == 400
    assert 'id="month-error"' in page and "请选择月份" in page
    assert f'<option value="{CIVIL}" selected>' in page


async def test_without_a_session_the_download_sends_to_sign_in(api: TestClient) -> None:
    resp = await api.get(
        "/console/statements", params={"department": MARKET, "month": "2026-11"}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/console/sign-in"
