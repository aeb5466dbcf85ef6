"""The console's security: who may sign in, the session cookie, CSRF, expiry, revocation, department scope,
the access log for every view of personal data, and no personal data in the application log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from console_support import CIVIL, MARKET, TAX, create, csrf_of, move, sign_in
from sqlalchemy import select, update

from logistics.accounts import clients, staff
from logistics.api.app import create_app
from logistics.config import Settings
from logistics.domain.tables import console_sessions, personal_data_access, utcnow
from logistics.storage.db import Database

from support import APPLICANT


async def test_a_clerk_signs_in_with_their_token_and_lands_on_today(api: TestClient, clerk: staff.NewStaff) -> None:
    await sign_in(api, clerk.token)
    resp = await api.get("/console/today")
    assert resp.status == 200
    page = await resp.text()
    assert "李秀英" in page and MARKET in page


async def test_the_session_cookie_is_httponly_strict_and_lasts_a_working_day(
    api: TestClient, clerk: staff.NewStaff
) -> None:
    form = await api.get("/console/sign-in")
    resp = await api.post(
        "/console/sign-in",
        data={"csrf": csrf_of(await form.text()), "token": clerk.token},
        allow_redirects=False,
    )
    assert resp.status == 303
    cookie = resp.cookies["console_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/console"
    assert cookie["max-age"] == str(10 * 3600)
    assert not cookie["secure"]  # the test server's base URL is http
    assert clerk.token not in resp.headers.getall("Set-Cookie")[0]


async def test_the_session_cookie_is_secure_when_the_public_base_url_is_https(
    settings: Settings, db: Database, clerk: staff.NewStaff
) -> None:
    secure = settings.model_copy(update={"public_base_url": "https://zwfw.zhengzhou.gov.cn"})
    client = TestClient(TestServer(create_app(secure, db=db)))
    await client.start_server()
    try:
        form = await client.get("/console/sign-in")
        assert form.cookies["console_sign_in"]["secure"] is True
        resp = await client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(await form.text()), "token": clerk.token},
            allow_redirects=False,
            cookies={"console_sign_in": form.cookies["console_sign_in"].value},
        )
        assert resp.status == 303
        assert resp.cookies["console_session"]["secure"] is True
    finally:
        await client.close()


@pytest.mark.parametrize("who", ["courier", "garbage", "revoked"])
async def test_only_an_active_clerk_token_signs_in(
    api: TestClient, db: Database, courier: staff.NewStaff, clerk: staff.NewStaff, who: str
) -> None:
    token = {"courier": courier.token, "garbage": "stk_" + "x" * 43, "revoked": clerk.token}[who]
    if who == "revoked":
        await staff.revoke(db, clerk.member.id)
    form = await api.get("/console/sign-in")
    resp = await api.post("/console/sign-in", data={"csrf": csrf_of(await form.text()), "token": token})
    assert resp.status == 401
    assert "令牌无效" in await resp.text()
    async with db.read() as conn:
        assert (await conn.execute(select(console_sessions))).first() is None


async def test_the_sign_in_form_without_its_csrf_token_is_refused(api: TestClient, clerk: staff.NewStaff) -> None:
    await api.get("/console/sign-in")  # the double-submit cookie is set, but the form field is missing
    resp = await api.post("/console/sign-in", data={"token": clerk.token}, allow_redirects=False)
    assert resp.status == 403
    assert "console_session" not in resp.cookies


async def test_a_sign_out_without_the_sessions_csrf_token_is_refused_and_the_session_stays(
    api: TestClient, clerk: staff.NewStaff
) -> None:
    await sign_in(api, clerk.token)
    for data in ({}, {"csrf": "not-the-token"}):
        resp = await api.post("/console/sign-out", data=data, allow_redirects=False)
        assert resp.status == 403
    assert (await api.get("/console/today", allow_redirects=False)).status == 200


async def test_a_form_posted_from_another_site_is_refused(api: TestClient, clerk: staff.NewStaff) -> None:
    csrf = await sign_in(api, clerk.token)
    resp = await api.post(
        "/console/sign-out", data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False
    )
    assert resp.status == 403
    assert (await api.get("/console/today", allow_redirects=False)).status == 200


async def test_sign_out_ends_the_session_for_good(api: TestClient, clerk: staff.NewStaff) -> None:
    csrf = await sign_in(api, clerk.token)
    cookie = api.session.cookie_jar.filter_cookies(api.make_url("/console"))["console_session"].value
    resp = await api.post("/console/sign-out", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/sign-in"
    replayed = await api.get("/console/today", cookies={"console_session": cookie}, allow_redirects=False)
    assert replayed.status == 303 and replayed.headers["Location"] == "/console/sign-in"


async def test_an_expired_session_is_sent_to_sign_in(api: TestClient, db: Database, clerk: staff.NewStaff) -> None:
    await sign_in(api, clerk.token)
    async with db.write() as conn:
        await conn.execute(update(console_sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    resp = await api.get("/console/today", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/sign-in"


async def test_revoking_the_token_signs_out_its_sessions_at_once(
    api: TestClient, db: Database, clerk: staff.NewStaff
) -> None:
    await sign_in(api, clerk.token)
    await staff.revoke(db, clerk.member.id)
    resp = await api.get("/console/today", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console/sign-in"
    async with db.read() as conn:
        assert (await conn.execute(select(console_sessions.c.ended_at))).scalar_one() is not None


async def test_console_pages_send_a_strict_content_security_policy(api: TestClient, clerk: staff.NewStaff) -> None:
    await sign_in(api, clerk.token)
    for path in ("/console/sign-in", "/console/today", "/console/exceptions", "/console/find?q=x"):
        resp = await api.get(path)
        policy = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "<script" not in await resp.text()


async def test_another_departments_shipment_is_a_404_everywhere(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    theirs = await create(api, hall, department=TAX, cases=[{"case_no": "410102-2026-07731", "item_name": "税务登记"}])
    await move(db, theirs["id"], "ordered", waybill="1295780512512")  # to chase: its label was never printed
    await sign_in(api, clerk.token)
    assert (await api.get(f"/console/shipments/{theirs['id']}")).status == 404
    for path in ("/console/today", f"/console/today?department={MARKET}", "/console/exceptions"):
        assert theirs["id"] not in await (await api.get(path)).text(), path
    assert (await api.get("/console/shipments/shp_01JDOESNOTEXIST0000000000")).status == 404
    assert (await api.get(f"/console/today?department={TAX}")).status == 404
    for q in ("410102-2026-07731", "1295780512512", theirs["tracking_code"], APPLICANT["phone"], APPLICANT["name"]):
        page = await (await api.get("/console/find", params={"q": q})).text()
        assert theirs["id"] not in page and "找到 0 件" in page, q
    async with db.read() as conn:
        assert (await conn.execute(select(personal_data_access))).first() is None


async def test_opening_a_shipment_writes_who_when_which_and_from_where(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    shipment = await create(api, hall)
    await sign_in(api, clerk.token)
    before = utcnow()
    page = await (await api.get(f"/console/shipments/{shipment['id']}")).text()
    assert APPLICANT["phone"] in page and APPLICANT["address"] in page  # clerks see their departments' data in full
    async with db.read() as conn:
        (row,) = (await conn.execute(select(personal_data_access))).all()
    assert (row.staff_id, row.shipment_id, row.view, row.address) == (
        clerk.member.id,
        shipment["id"],
        "shipment",
        "127.0.0.1",
    )
    assert before <= row.viewed_at <= utcnow()


async def test_finding_by_phone_records_a_view_of_every_match_and_lists_record_none(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    first = await create(api, hall)
    second = await create(
        api, hall, department=CIVIL, cases=[{"case_no": "410106-2026-01234", "item_name": "婚姻登记"}]
    )
    await sign_in(api, clerk.token)
    for path in ("/console/today", f"/console/today?department={CIVIL}", "/console/exceptions"):
        assert (await api.get(path)).status == 200
    async with db.read() as conn:
        assert (await conn.execute(select(personal_data_access))).first() is None
    page = await (await api.get("/console/find", params={"q": APPLICANT["phone"]})).text()
    assert "找到 2 件" in page
    async with db.read() as conn:
        rows = (await conn.execute(select(personal_data_access))).all()
    assert sorted((r.shipment_id, r.view) for r in rows) == sorted([(first["id"], "find"), (second["id"], "find")])


async def test_no_personal_data_reaches_the_application_log(
    api: TestClient, hall: clients.Credentials, clerk: staff.NewStaff, caplog: pytest.LogCaptureFixture
) -> None:
    shipment = await create(api, hall)
    with caplog.at_level(logging.DEBUG):
        await sign_in(api, clerk.token)
        await api.get("/console/find", params={"q": APPLICANT["phone"]})
        await api.get("/console/find", params={"q": APPLICANT["name"]})
        await api.get(f"/console/shipments/{shipment['id']}")
        await api.get("/console/exceptions")
    assert any(r.getMessage() == "console_signed_in" for r in caplog.records)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (APPLICANT["phone"], APPLICANT["name"], APPLICANT["address"], clerk.token):
        assert secret not in logged


async def test_a_clients_free_text_is_shown_escaped_in_the_lists(
    api: TestClient, db: Database, hall: clients.Credentials, clerk: staff.NewStaff
) -> None:
    hostile = {"case_no": "410106-2026-<u>00391</u>", "item_name": '<img src=x onerror="alert(1)">食品经营许可证核发'}
    made = await create(api, hall, cases=[hostile], window="综合受理<s>3</s>号窗口")
    await move(db, made["id"], "ordered", waybill="1151263812390")  # waiting for the courier: today's list
    await sign_in(api, clerk.token)
    today = await (await api.get("/console/today")).text()
    found = await (await api.get("/console/find", params={"q": "1151263812390"})).text()
    for page in (today, found):
        assert "<u>" not in page and "<img" not in page and "<s>" not in page
        assert "410106-2026-&lt;u&gt;00391&lt;/u&gt;" in page
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;食品经营许可证核发" in page
        assert "综合受理&lt;s&gt;3&lt;/s&gt;号窗口" in page
