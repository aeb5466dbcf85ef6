"""The one keyset-paging helper every list endpoint reads its pages through."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from logistics.accounts.clients import Credentials
from logistics.api.errors import Problem
from logistics.api.paging import ListQuery, Page, decode_cursor, encode_cursor, if_given
from logistics.domain.tables import shipments
from logistics.storage.db import Database

from support import auth, delivery_body


async def _three_shipments(api: TestClient, hall: Credentials) -> list[str]:
    """Ids newest first, as the pages give them: by id, whose first ten characters are the millisecond it was made
    in (two creates within one millisecond are ordered by the id's random rest)."""
    ids = []
    for case_no in ("410106-2026-00101", "410106-2026-00102", "410106-2026-00103"):
        cases = [{"case_no": case_no, "item_name": "食品经营许可证核发"}]
        resp = await api.post("/v1/shipments", json=delivery_body(cases=cases), headers=auth(hall))
        assert resp.status == 201
        ids.append((await resp.json())["id"])
    return sorted(ids, reverse=True)


async def _page(db: Database, query: dict[str, str]) -> Page:
    q = ListQuery(query, maximum=100)
    q.cursor("shp_")
    async with db.read() as conn:
        return await q.fetch(conn, select(shipments), shipments.c.id)


async def test_a_page_holds_the_newest_rows_and_names_its_last_when_more_follow(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    newest_first = await _three_shipments(api, hall)
    page = await _page(db, {"limit": "2"})
    assert [r.id for r in page.rows] == newest_first[:2]
    assert page.next_after == newest_first[1]
    assert decode_cursor(page.answer([])["next_cursor"], "shp_") == newest_first[1]


async def test_the_page_that_reaches_the_oldest_row_has_no_next_cursor(
    api: TestClient, db: Database, hall: Credentials
) -> None:
    newest_first = await _three_shipments(api, hall)
    page = await _page(db, {"limit": "3"})
    assert [r.id for r in page.rows] == newest_first
    assert page.answer([{"id": i} for i in newest_first]) == {
        "data": [{"id": i} for i in newest_first],
        "next_cursor": None,
    }


async def test_a_cursor_continues_after_the_row_it_names(api: TestClient, db: Database, hall: Credentials) -> None:
    newest_first = await _three_shipments(api, hall)
    page = await _page(db, {"limit": "2", "cursor": encode_cursor(newest_first[1])})
    assert [r.id for r in page.rows] == newest_first[2:]
    assert page.next_after is None


def test_a_cursor_is_read_only_after_the_other_fields_were_checked() -> None:
    q = ListQuery({"limit": "0", "cursor": encode_cursor("shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C")}, maximum=100)
    with pytest.raises(Problem) as refused:
        q.cursor("shp_")
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.errors or []] == ["limit"]


@pytest.mark.parametrize(("status", "listed"), [(None, 3), ("pending", 3), ("cancelled", 0)])
async def test_a_filter_narrows_the_page_only_when_given(
    api: TestClient, db: Database, hall: Credentials, status: str | None, listed: int
) -> None:
    await _three_shipments(api, hall)
    q = ListQuery({}, maximum=100)
    q.cursor("shp_")
    query = select(shipments).where(if_given(status, shipments.c.status == status))
    async with db.read() as conn:
        page = await q.fetch(conn, query, shipments.c.id)
    assert len(page.rows) == listed
