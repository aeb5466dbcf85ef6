"""The pieces both OpenAPI path tables (docs.py for the clients' API, people_docs.py for the people's side)
are written with, so that a reference, a refusal or a list endpoint reads the same wherever it is described."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"
# The documented largest `limit`: the default of settings.page_size_max, which an operator may change.
PAGE_MAX = 100


def ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": ref("Problem")}}}


def json_answer(model: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(model)}}}


def common_refusals(unauthorized: str) -> dict[str, Any]:
    """The refusals every operation can answer; ``unauthorized`` names the credential it reads."""
    return {
        "400": problem("Malformed request"),
        "401": problem(unauthorized),
        "413": problem("Body too large"),
        "422": problem("Validation failed; `errors` lists the fields"),
        "503": problem("Temporarily unavailable"),
    }


def id_param(prefix: str) -> dict[str, Any]:
    """The ``{id}`` path parameter of a resource whose ids are ``prefix_`` and a ULID."""
    pattern = f"^{prefix}_[0-9A-Z]{{26}}$"
    return {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


def list_operation(
    operation_id: str, summary: str, filters: list[dict[str, Any]], page: str, refusals: dict[str, Any]
) -> dict[str, Any]:
    """A cursor-paged list (logistics.api.paging): its ``filters`` (query parameters), then limit and cursor."""
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [
            *filters,
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": json_answer(page, "A page"), **refusals},
    }
