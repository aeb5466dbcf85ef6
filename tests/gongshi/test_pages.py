"""/gongshi, /gongshi.json and /gongshi.csv: the figures per department and month with a district total, when
they were computed, what each figure means; nothing personal anywhere; hostile query strings get a 400."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from gongshi_support import CIVIL, MARKET, PEOPLE, History, Step, write

from logistics.accounts import clients
from logistics.gongshi import figures, refresh, views
from logistics.storage.db import Database

THIS_MONTH = figures.month_of(datetime.now(UTC))


def delivered(department: str, created: datetime, hours: float, kind: str = "delivery") -> History:
    return History(
        department,
        kind,
        created,
        (created + timedelta(hours=8)).date() + timedelta(days=10),
        [
            Step("ordered", created + timedelta(minutes=30)),
            Step("picked_up", created + timedelta(hours=2)),
            Step("delivered", created + timedelta(hours=2 + hours)),
        ],
        complaints=[(created + timedelta(hours=1), created + timedelta(hours=30))],
    )


@pytest.fixture
async def seeded(db: Database, api: TestClient) -> list[str]:
    """This month: eight deliveries of the market department, two of civil affairs (a small cell)."""
    client = await clients.create(db, "上街区行政审批系统")
    now = datetime.now(UTC)
    start = figures.month_bounds(THIS_MONTH)[0]
    first = max(start + timedelta(minutes=1), now - timedelta(days=3))
    base = min(first, now - timedelta(hours=1))
    hs = [delivered(MARKET, base, 20 + i) for i in range(8)] + [delivered(CIVIL, base, 30) for _ in range(2)]
    hs = [
        h if h.steps[-1].occurred_at < now else History(h.department, h.kind, h.created_at, h.due_by, h.steps[:1])
        for h in hs
    ]
    ids = await write(db, client.id, hs)
    await refresh(db, now)
    await views.reload(api.app)  # what the background task does within a second
    return ids


async def test_the_page_shows_each_department_and_the_district_total_with_the_time_computed(
    api: TestClient, seeded: list[str]
) -> None:
    resp = await api.get("/gongshi")
    assert resp.status == 200
    html = await resp.text()
    assert MARKET in html and CIVIL in html and "全区合计" in html
    assert "数据更新于" in html and "北京时间" in html
    assert "<5" not in html or "&lt;5" in html  # escaped
    assert "&lt;5" in html  # civil affairs' two shipments
    assert "最近秩" in html and "满意率 = " in html  # the definitions are stated
    assert "<script" not in html
    assert f'href="/gongshi?month={THIS_MONTH}"' in html
    cache = resp.headers["Cache-Control"]
    assert int(re.search(r"max-age=(\d+)", cache).group(1)) <= 60


async def test_the_json_has_one_row_per_department_and_suppressed_cells_read_fewer_than_five(
    api: TestClient, seeded: list[str]
) -> None:
    resp = await api.get("/gongshi.json")
    assert resp.status == 200
    body = await resp.json()
    assert body["month"] == THIS_MONTH and len(body["months"]) == 25
    rows = {r["department"]: r for r in body["departments"]}
    assert rows[MARKET]["created_delivery"] == 8
    assert rows[CIVIL]["created_delivery"] == "<5"
    assert body["total"]["created_delivery"] == "*"  # 10 − 8 would give civil affairs' 2 back
    assert body["computed_at"].endswith("Z")


async def test_a_month_without_cases_reads_a_dash(api: TestClient, seeded: list[str]) -> None:
    empty = figures.shift_month(THIS_MONTH, -13)
    html = await (await api.get(f"/gongshi?month={empty}")).text()
    assert "本月无案件" in html and "—" in html
    body = await (await api.get(f"/gongshi.json?month={empty}")).json()
    assert body["departments"] == [] and body["total"] is None


async def test_nothing_personal_appears_in_the_page_json_or_csv(
    api: TestClient, seeded: list[str], db: Database
) -> None:
    outputs = []
    for path in ("/gongshi", "/gongshi.json", "/gongshi.csv"):
        for month in (THIS_MONTH, figures.shift_month(THIS_MONTH, -1)):
            resp = await api.get(f"{path}?month={month}")
            assert resp.status == 200
            outputs.append((await resp.read()).decode())
    text = "\n".join(outputs)
    for name, phone, address in PEOPLE:
        for secret in (name, phone, address, address.split("区")[-1]):
            assert secret not in text, secret
    for shipment_id in seeded:
        assert shipment_id not in text
    assert "1295780" not in text  # no waybill
    assert "快递太慢" not in text and "已签收" not in text  # no free text


@pytest.mark.parametrize(
    "query",
    [
        "month=2026-13",
        "month=2019-01",
        "month=../../etc/passwd",
        "month=%00",
        "month=" + "9" * 5000,
        "month=２０２６-１１",
        "month=2026-1",
        "month[]=x&month=2026-00",
    ],
)
async def test_a_hostile_month_is_a_400_never_a_500(api: TestClient, seeded: list[str], query: str) -> None:
    for path in ("/gongshi", "/gongshi.json", "/gongshi.csv"):
        resp = await api.get(f"{path}?{query}")
        assert resp.status == 400, (path, query)
    problem = await (await api.get(f"/gongshi.json?{query}")).json()
    assert problem["status"] == 400


async def test_other_parameters_are_ignored(api: TestClient, seeded: list[str]) -> None:
    resp = await api.get("/gongshi.json?utm_source=weixin&x=<script>")
    assert resp.status == 200


async def test_the_csv_is_utf8_and_a_department_name_cannot_become_a_formula(db: Database, api: TestClient) -> None:
    client = await clients.create(db, "上街区行政审批系统")
    created = datetime.now(UTC) - timedelta(minutes=5)
    hostile = '=HYPERLINK("http://evil.example","点我")'
    await write(db, client.id, [History(hostile, "intake", created, None, []) for _ in range(6)])
    await refresh(db, datetime.now(UTC))
    await views.reload(api.app)
    resp = await api.get("/gongshi.csv")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv") and "charset=utf-8" in resp.headers["Content-Type"]
    raw = await resp.read()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:2] == ["月份", "部门"]
    names = [r[1] for r in rows[1:]]
    assert "'" + hostile in names and "全区合计" in names
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    html = await (await api.get("/gongshi")).text()
    assert "<script" not in html and "&quot;http://evil.example&quot;" in html


async def test_before_the_first_refresh_the_page_says_so(api: TestClient) -> None:
    html = await (await api.get("/gongshi")).text()
    assert "尚未计算" in html


async def test_an_unchanged_answer_is_a_304_to_its_etag(api: TestClient, seeded: list[str]) -> None:
    first = await api.get("/gongshi.json")
    etag = first.headers["ETag"]
    again = await api.get("/gongshi.json", headers={"If-None-Match": f'W/"other", {etag}'})
    assert again.status == 304 and again.headers["ETag"] == etag
    assert "max-age" in again.headers["Cache-Control"]
    other_month = await api.get(f"/gongshi.json?month={figures.shift_month(THIS_MONTH, -1)}")
    assert other_month.headers["ETag"] != etag
    stale = await api.get("/gongshi.csv", headers={"If-None-Match": '"0123456789abcdef01234567"'})
    assert stale.status == 200


async def test_a_refresh_reaches_the_answers_by_the_background_reload(
    api: TestClient, seeded: list[str], db: Database
) -> None:
    before = (await (await api.get("/gongshi.json")).json())["computed_at"]
    later = datetime.now(UTC) + timedelta(seconds=1)
    await refresh(db, later)
    assert (await (await api.get("/gongshi.json")).json())["computed_at"] == before  # served from memory
    await views.reload(api.app)
    after = (await (await api.get("/gongshi.json")).json())["computed_at"]
    assert after != before
