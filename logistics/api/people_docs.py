"""OpenAPI paths and models of the people's side under /v1: scans (staff tokens), complaints, applicant links,
好差评 ratings and their follow-ups.

Kept beside the handlers' modules and merged into /openapi.json by docs.py. The HTML pages (/t, /a, /staff)
are pages, not API, and are not described here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from logistics.api.openapi import common_refusals, id_param, json_answer, list_operation, problem, ref
from logistics.api.ratings import ACTION_MAX, ACTION_MIN, COMMENT_MAX
from logistics.api.scans import ScanIn, ScanResult

STAFF = [{"staff": []}]
SECURITY_SCHEMES = {"staff": {"type": "http", "scheme": "bearer", "description": "staff token (stk_…)"}}


class ScanBatchIn(BaseModel):
    scans: list[ScanIn] = Field(min_length=1, max_length=200)


class ScanBatchOut(BaseModel):
    results: list[ScanResult] = Field(description="one per scan, in request order")


class StaffOut(BaseModel):
    id: str
    name: str
    role: str = Field(description="courier | clerk")
    departments: list[str]
    actions: list[str]
    failure_reasons: dict[str, str] = Field(description="EMS 未妥投 reason code → meaning")


class ScanLookupOut(BaseModel):
    shipment: dict[str, Any] | None = Field(description="masked; never the 取件验证码; null for a 交接清单")
    manifest: dict[str, Any] | None = Field(None, description="a 交接清单's QR (…/m/{code}): department, count")


class ComplaintAnswer(BaseModel):
    text: str = Field(description="the hall's answer, in full (the tracking page shows it masked)")
    answered_at: datetime


class ComplaintOut(BaseModel):
    id: str = Field(examples=["cmp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"])
    shipment_id: str
    tracking_code: str
    category: str = Field(description="delay | not_received | damaged | attitude | privacy | other")
    category_text: str
    text: str
    created_at: datetime
    answer: ComplaintAnswer | None = Field(description="the hall's answer from its console; null until answered")


class ComplaintPage(BaseModel):
    data: list[ComplaintOut]
    next_cursor: str | None


class ApplicantLinkOut(BaseModel):
    applicant_url: str
    expires_at: datetime


# 好差评 (logistics/api/ratings.py)


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
    closed_by: str | None = Field(description="your client id when you closed it; `hall` when a clerk did")
    action: str | None = Field(description="the action taken")
    late: bool = Field(description="closed after due_by, or still open past it (Beijing dates)")


class FollowUpPage(BaseModel):
    data: list[FollowUpOut]
    next_cursor: str | None


class FollowUpCloseIn(BaseModel):
    action: str = Field(min_length=ACTION_MIN, max_length=ACTION_MAX, description="the action taken (回访 and fix)")


VALIDATION_MODELS = (ScanIn, ScanBatchIn, FollowUpCloseIn)
SERIALIZATION_MODELS = (
    *(ScanResult, ScanBatchOut, StaffOut, ScanLookupOut, ComplaintPage, ApplicantLinkOut),
    *(RatingPage, FollowUpOut, FollowUpPage),
)


_COMMON = common_refusals("Missing or invalid credentials")

PATHS: dict[str, Any] = {
    "/v1/scans": {
        "post": {
            "operationId": "recordScans",
            "summary": "Staff scans (pickup, arrive, deliver, fail, returned): one scan, or {scans: [...]} with "
            "per-scan results",
            "description": "Idempotent per (staff, scan_id). A single rejected scan answers with a problem whose "
            "`error.code` is one of unknown-code, not-your-hall, role-not-allowed, not-ready, already-delivered, "
            "shipment-closed, not-returnable, reason-required, unknown-reason, verification-required, "
            "wrong-verification-code, verification-locked; a batch always answers 200 with a result per scan. "
            "`fail` names an EMS reason_code (GET /v1/staff/me lists them); `returned` is a clerk taking a "
            "delivery back at the hall.",
            "security": STAFF,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"oneOf": [ref("ScanIn"), ref("ScanBatchIn")]}}},
            },
            "responses": {
                "200": {
                    "description": "The scan's answer, or a batch's answers",
                    "content": {"application/json": {"schema": {"oneOf": [ref("ScanResult"), ref("ScanBatchOut")]}}},
                },
                "403": problem("not-your-hall or role-not-allowed"),
                "404": problem("unknown-code"),
                "409": problem(
                    "not-ready, not-returnable, already-delivered or shipment-closed (also for a late scan on a "
                    "shipment that ended)"
                ),
                "423": problem("verification-locked"),
                **_COMMON,
            },
        }
    },
    "/v1/scans/lookup": {
        "get": {
            "operationId": "lookupScanCode",
            "summary": "What a scanned code is and the next expected action; records nothing",
            "security": STAFF,
            "parameters": [{"name": "code", "in": "query", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": json_answer("ScanLookupOut", "The parcel, masked"),
                "403": problem("not-your-hall"),
                "404": problem("unknown-code"),
                "429": problem("Too many lookups with this staff token; `Retry-After` says when to try again"),
                **_COMMON,
            },
        }
    },
    "/v1/staff/me": {
        "get": {
            "operationId": "getStaffMe",
            "summary": "The signed-in staff member: role, departments, allowed actions, failure reasons",
            "security": STAFF,
            "responses": {"200": json_answer("StaffOut", "The staff member"), **_COMMON},
        }
    },
    "/v1/complaints": {
        "get": list_operation(
            "listComplaints",
            "Complaints filed on this client's tracking pages, newest first, in cursor pages",
            [{"name": "shipment_id", "in": "query", "schema": {"type": "string"}}],
            "ComplaintPage",
            _COMMON,
        )
    },
    "/v1/shipments/{id}/applicant-link": {
        "post": {
            "operationId": "reissueApplicantLink",
            "summary": "A new applicant choice link (the previous one stops working); awaiting_applicant only",
            "parameters": [id_param("shp")],
            "responses": {
                "201": json_answer("ApplicantLinkOut", "The new link"),
                "404": problem("Not found"),
                "409": problem("The shipment is not awaiting the applicant"),
                **_COMMON,
            },
        }
    },
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
