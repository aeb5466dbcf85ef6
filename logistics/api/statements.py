"""/v1/statements: the client's monthly statement of one department (CSV), for the EMS 月结 settlement."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from logistics import statement
from logistics.api.appkeys import DB
from logistics.api.auth import authenticate
from logistics.api.errors import Problem

routes = web.RouteTableDef()


def statement_query(request: web.Request) -> tuple[str, date]:
    """The department and the month's first day, or the 400 that names every field at fault."""
    errors = []
    department, first = "", None
    try:
        department = statement.parse_department(request.query.get("department"))
    except ValueError as exc:
        errors.append({"field": "department", "message": str(exc)})
    try:
        first = statement.parse_month(request.query.get("month"))
    except ValueError as exc:
        errors.append({"field": "month", "message": str(exc)})
    if errors or first is None:
        raise Problem(
            400, "bad-statement-query", "Bad statement query", "Give department and month (YYYY-MM).", errors=errors
        )
    return department, first


@routes.get("/v1/statements")
async def get_statement(request: web.Request) -> web.StreamResponse:
    client_id = await authenticate(request)
    department, first = statement_query(request)
    db = request.app[DB]
    rows = await statement.month_rows(db, department, first, client_id)
    return await statement.send(request, db, department, first, rows)
