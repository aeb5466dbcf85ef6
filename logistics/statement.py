"""The monthly statement of a department (月结对账单) for the EMS settlement: one CSV row per shipment handed to
the post in a Beijing calendar month, for the owning client (API) or the department's clerks (console).

Handed to the post = the shipment's first non-refused ``picked_up`` event (as the console's lists count it,
logistics.console.queries.annotate); Beijing time decides the month and the date. Rows are ordered by that date,
then waybill. The month's rows are read in one query (a few small values each), then written out in chunks
with their case numbers, so a large month never holds its CSV or its cases whole.

The CSV opens in Excel as it is: UTF-8 with a byte-order mark (without one, Chinese Excel reads a CSV as GBK
and the Chinese turns to mojibake; CSV readers of scripts skip it, e.g. Python's ``utf-8-sig``), CRLF line
ends, RFC 4180 quoting. Case numbers come from clients, so no cell may start a formula: a cell beginning with
``= + - @`` (or a tab or carriage return, which Excel strips before looking) gets a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import func, literal_column, select

from logistics.api.appkeys import REQUEST_ID
from logistics.api.schemas import BEIJING, FIRST_YEAR, LAST_YEAR
from logistics.domain.payment import DEFAULT_PAYMENT_MODE, PAYMENT_TEXT
from logistics.domain.tables import MOVED_STATUSES, shipment_cases, shipment_events, shipments, status_in_sql
from logistics.storage.db import Database

CONTENT_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff".encode()
HEADER = ("运单号", "交寄日期", "类型", "付款方式", "办件编号", "寄递编号")
KIND_WORD = {"intake": "寄件", "delivery": "送达"}  # 寄件: the applicant mails papers in; 送达: the result goes out
CASE_SEPARATOR = ";"
CHUNK = 500  # rows written per read of their case numbers (and per bounded IN list)
MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_DEPARTMENT = 100  # as a shipment's department
UPDATED_MARGIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class StatementRow:
    shipment_id: str
    kind: str
    waybill_no: str | None
    payment_mode: str | None
    handed_at: datetime  # aware UTC

    @property
    def day(self) -> date:
        return self.handed_at.astimezone(BEIJING).date()


def parse_month(value: str | None) -> date:
    """``YYYY-MM`` → the month's first day; ValueError with the reason for anything else."""
    match = MONTH.fullmatch(value or "")
    if match is None:
        raise ValueError("must be a month as YYYY-MM, e.g. 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return date(year, month, 1)


def parse_department(value: str | None) -> str:
    """A department name as shipments store it (trimmed); ValueError with the reason for anything else."""
    text = (value or "").strip()
    if not text:
        raise ValueError("is required: the department, as named on its shipments")
    if len(text) > MAX_DEPARTMENT:
        raise ValueError(f"must be at most {MAX_DEPARTMENT} characters")
    if not text.isprintable():  # control characters (NUL among them, which PostgreSQL cannot even compare)
        raise ValueError("must not contain control characters")
    return text


def month_bounds(first: date) -> tuple[datetime, datetime]:
    """The instants [start, end) of a Beijing calendar month, given its first day."""
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return datetime.combine(first, time(0), tzinfo=BEIJING), datetime.combine(following, time(0), tzinfo=BEIJING)


def safe_cell(value: str) -> str:
    """A cell no spreadsheet reads as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue().encode("utf-8")


def cells(row: StatementRow, case_numbers: Sequence[str]) -> tuple[str, ...]:
    # A shipment from before payment modes were kept went out as monthly sends it (the hall paying).
    mode = row.payment_mode or DEFAULT_PAYMENT_MODE
    mode = PAYMENT_TEXT.get(mode, mode)
    return (
        row.waybill_no or "",
        row.day.isoformat(),
        KIND_WORD.get(row.kind, row.kind),
        mode,
        CASE_SEPARATOR.join(case_numbers),
        row.shipment_id,
    )


def ordered(rows: Iterable[StatementRow]) -> list[StatementRow]:
    """By Beijing date, then waybill (then id, so the order is total)."""
    return sorted(rows, key=lambda r: (r.day, r.waybill_no or "", r.shipment_id))


async def month_rows(db: Database, department: str, first: date, client_id: str | None) -> list[StatementRow]:
    """The shipments of ``department`` (and of ``client_id``, when given) handed to the post in the month."""
    start, end = month_bounds(first)
    handed = (
        select(func.min(shipment_events.c.occurred_at))
        .where(
            shipment_events.c.shipment_id == shipments.c.id,
            shipment_events.c.status == "picked_up",
            shipment_events.c.refused.is_(False),
        )
        .correlate(shipments)
        .scalar_subquery()
    )
    mine = [
        shipments.c.department == department,
        shipments.c.created_at < end,  # handed over after it was made
        # A shipment handed over in the month changed then, so it was last updated since (updated_at is when the
        # event was recorded, so a day's margin for a carrier clock ahead of ours): the cheap test that spares
        # reading the events of every older shipment of the department (the console's lists use the same).
        shipments.c.updated_at >= start - UPDATED_MARGIN,
        # and it is in one of MOVED_STATUSES: ix_shipments_department_moved's condition, word for word.
        literal_column(status_in_sql(MOVED_STATUSES)),
    ]
    if client_id is not None:
        mine.append(shipments.c.client_id == client_id)
    candidates = (
        select(
            shipments.c.id,
            shipments.c.kind,
            shipments.c.waybill_no,
            shipments.c.payment_mode,
            handed.label("handed_at"),
        )
        .where(*mine)
        .subquery()
    )
    query = select(candidates).where(candidates.c.handed_at >= start, candidates.c.handed_at < end)
    async with db.read() as conn:
        found = [StatementRow(*r) for r in await conn.execute(query)]
    return ordered(found)


async def _case_numbers(db: Database, shipment_ids: list[str]) -> dict[str, list[str]]:
    numbers: dict[str, list[str]] = {sid: [] for sid in shipment_ids}
    async with db.read() as conn:
        for r in await conn.execute(
            select(shipment_cases.c.shipment_id, shipment_cases.c.case_no)
            .where(shipment_cases.c.shipment_id.in_(shipment_ids))
            .order_by(shipment_cases.c.shipment_id, shipment_cases.c.position)
        ):
            numbers[r.shipment_id].append(r.case_no)
    return numbers


async def csv_chunks(db: Database, rows: list[StatementRow]) -> AsyncIterator[bytes]:
    """The statement as bytes: the byte-order mark and header, then the rows a chunk at a time."""
    yield BOM + csv_lines([HEADER])
    for at in range(0, len(rows), CHUNK):
        chunk = rows[at : at + CHUNK]
        numbers = await _case_numbers(db, [r.shipment_id for r in chunk])
        yield csv_lines(cells(r, numbers[r.shipment_id]) for r in chunk)


def disposition(department: str, first: date) -> str:
    """The download's name: ASCII for old clients, with the department's own name in ``filename*`` (RFC 6266)."""
    month, name = f"{first:%Y-%m}", quote(department, safe="")
    return f"attachment; filename=\"statement-{month}.csv\"; filename*=UTF-8''{name}-{month}.csv"


async def send(
    request: web.Request, db: Database, department: str, first: date, rows: list[StatementRow]
) -> web.StreamResponse:
    """Stream the statement as the answer (the rows were read before, so a failure there is still a problem)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": CONTENT_TYPE,
            "Content-Disposition": disposition(department, first),
            "Cache-Control": "private, no-store",
            "X-Statement-Rows": str(len(rows)),
        }
    )
    request_id = request.get(REQUEST_ID)
    if request_id:  # the middleware adds it to answers it gets back; a streamed answer's headers are out by then
        response.headers["X-Request-ID"] = request_id
    await response.prepare(request)
    async for chunk in csv_chunks(db, rows):
        await response.write(chunk)
    await response.write_eof()
    return response
