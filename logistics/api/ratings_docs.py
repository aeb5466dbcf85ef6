"""OpenAPI paths and models of 好差评: ``GET /v1/ratings``, ``GET /v1/follow-ups``, ``POST /v1/follow-ups/{id}/close``.
Merged into /openapi.json by docs.py, like people_docs.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from logistics.api.follow_ups import ACTION_MAX, ACTION_MIN
from logistics.api.openapi import common_refusals, id_param, json_answer, list_operation, problem, ref
from logistics.api.ratings import COMMENT_MAX


class FollowUpSummary(BaseModel):
    id: str = Field(examples=["fu_01JD8Z6Q2M4X7V3K9T1R5N8B2C"])
    due_by: date = Field(description="Beijing date: the fifth working day after the rating")


class RatingOut(BaseModel):
    id: str = Field(examples=["rat_01JD8Z6Q2M4X7V3K9T1R5N8B2C"])
    shipment_id: str
    tracking_code: str
    level: int = Field(ge=1, le=5, description="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意")
    level_text: str = Field(examples=["不满意"])
    comment: str | None = Field(
        max_length=COMMENT_MAX,
        description="the applicant's comment with every phone and resident-ID number removed; never public",
    )
    created_at: datetime
    follow_up_opened: bool = Field(description="levels 1 and 2 open a follow-up")
    follow_up: FollowUpSummary | None


class RatingPage(BaseModel):
    data: list[RatingOut]
    next_cursor: str | None


class FollowUpOut(BaseModel):
    id: str = Field(examples=["fu_01JD8Z6Q2M4X7V3K9T1R5N8B2C"])
    rating_id: str
    shipment_id: str
    tracking_code: str | None = None
    level: int | None = Field(default=None, description="the rating's level (in lists)")
    status: str = Field(description="open | closed")
    opened_at: datetime
    due_by: date = Field(description="Beijing date: the fifth working day after opened_at")
    closed_at: datetime | None
    closed_by: str | None = Field(description="the client's id, or the staff id of the clerk who closed it")
    action: str | None = Field(description="the action taken")
    late: bool = Field(description="closed after due_by, or still open past it (Beijing dates)")


class FollowUpPage(BaseModel):
    data: list[FollowUpOut]
    next_cursor: str | None


class FollowUpCloseIn(BaseModel):
    action: str = Field(min_length=ACTION_MIN, max_length=ACTION_MAX, description="the action taken (回访 and fix)")


VALIDATION_MODELS = (FollowUpCloseIn,)
SERIALIZATION_MODELS = (RatingPage, FollowUpOut, FollowUpPage)

_COMMON = common_refusals("Missing or invalid API key")

PATHS: dict[str, Any] = {
    "/v1/ratings": {
        "get": list_operation(
            "listRatings",
            "好差评 given on this client's tracking pages, newest first, in cursor pages",
            [
                {
                    "name": "since",
                    "in": "query",
                    "description": "only ratings given at or after this instant (ISO 8601 with a zone)",
                    "schema": {"type": "string", "format": "date-time"},
                }
            ],
            "RatingPage",
            _COMMON,
        )
    },
    "/v1/follow-ups": {
        "get": list_operation(
            "listFollowUps",
            "Follow-ups of this client's bad ratings (不满意, 非常不满意), newest first, in cursor pages",
            [{"name": "status", "in": "query", "schema": {"type": "string", "enum": ["open", "closed"]}}],
            "FollowUpPage",
            _COMMON,
        )
    },
    "/v1/follow-ups/{id}/close": {
        "post": {
            "operationId": "closeFollowUp",
            "summary": "Close a follow-up with the action taken; once",
            "parameters": [id_param("fu")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("FollowUpCloseIn")}}},
            "responses": {
                "200": json_answer("FollowUpOut", "Closed"),
                "404": problem("Not found (also another client's follow-up)"),
                "409": problem("Already closed; `follow_up` in the body is the first close"),
                **_COMMON,
            },
        }
    },
}
