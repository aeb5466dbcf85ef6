"""RFC 9457 problem details: every error the API gives, in one shape."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from logistics.api.appkeys import REQUEST_ID
from logistics.api.schemas import PATTERN_MESSAGES, FieldError

PROBLEM_TYPE_BASE = "https://docs.gov-logistics.invalid/problems/"
CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def response(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        body["instance"] = request.path
        body["request_id"] = request.get(REQUEST_ID)
        if self.errors is not None:
            body["errors"] = self.errors
        return web.Response(
            status=self.status, body=orjson.dumps(body), content_type=CONTENT_TYPE, headers=self.headers
        )


def not_found(what: str = "shipment") -> Problem:
    return Problem(404, "not-found", "Not found", f"No such {what}.")


def validation_problem(errors: list[dict[str, str]]) -> Problem:
    return Problem(422, "validation", "Invalid request", "Some fields are invalid; see errors.", errors=errors)


def from_validation_error(exc: ValidationError) -> Problem:
    return validation_problem(field_errors(exc))


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Each error of ``exc`` as ``{"field": "recipient.phone", "message": …}``, in the words clients read."""
    errors: list[dict[str, str]] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            field = ".".join(p for p in (loc, cause.field) if p)
            message = cause.message
        elif err["type"] == "string_pattern_mismatch" and str(err["loc"][-1]) in PATTERN_MESSAGES:
            field = loc
            message = PATTERN_MESSAGES[str(err["loc"][-1])]
        else:
            field = loc or "body"
            message = err["msg"].removeprefix("Value error, ")
        errors.append({"field": field, "message": message})
    return errors
