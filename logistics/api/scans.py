"""/v1/scans: couriers and hall clerks record pickup, arrival, delivery and failed attempts from a phone.

Staff authenticate with their own tokens (``stk_…``), never with a client's API key. Every scan is stored with
its answer under (staff, scan_id), so a device that resends its offline queue gets the same answers and
changes nothing twice. A scan becomes an event through ``apply_event`` (source ``scan``, placed at
``scanned_at``), which keeps statuses forward-only and writes the webhooks.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from logistics.accounts.staff import ROLE_ACTIONS, StaffMember
from logistics.api.appkeys import DB, RATE_LIMITER, REQUEST_ID, SETTINGS, SIGNAL, STAFF_CACHE
from logistics.api.auth import bearer_owner
from logistics.api.errors import (
    CONTENT_TYPE,
    PROBLEM_TYPE_BASE,
    Problem,
    from_validation_error,
    validation_problem,
)
from logistics.api.schemas import Instant, Strict, clean_text
from logistics.api.shipments import json_response, read_json
from logistics.domain import manifests
from logistics.domain.events import apply_event, counted_attempt, lock_shipment
from logistics.domain.ids import _TRACKING_ALPHABET
from logistics.domain.proof import STAFF_CODE_MARK
from logistics.domain.statuses import FINAL, RANK, may_move
from logistics.domain.tables import scans, shipment_cases, shipment_events, shipments, utcnow, verification_guards
from logistics.domain.wording import ACTION_STATUS, ACTION_TEXT, failure_reasons, staff_view, status_text

log = logging.getLogger("logistics.scans")
routes = web.RouteTableDef()
# A device clock may run a little fast; a scan "from the future" beyond this is placed at the time it arrived.
CLOCK_SKEW = timedelta(minutes=5)

Action = Literal["pickup", "arrive", "deliver", "fail", "returned"]
# Where a clerk may take a parcel back at the hall: it was handed to the post and has not ended.
RETURNABLE = frozenset({"picked_up", "in_transit", "out_for_delivery", "delivery_failed", "returning"})


class ScanIn(Strict):
    scan_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="generated on the device")]
    code: Annotated[
        str,
        StringConstraints(min_length=1, max_length=300),
        BeforeValidator(clean_text),
        Field(description="QR URL, tracking code or waybill"),
    ]
    action: Action
    reason_code: Annotated[str | None, Field(max_length=8, description="EMS failure reason, for fail")] = None
    verification_code: Annotated[str | None, Field(max_length=12)] = None
    location: Annotated[str | None, StringConstraints(max_length=200), BeforeValidator(clean_text)] = None
    scanned_at: Instant | None = Field(None, description="when the scan happened on the device (ISO 8601)")


class ScanError(BaseModel):
    code: str
    message: str = Field(description="for the courier, in Chinese")


class ScanResult(BaseModel):
    """The answer to one scan (a batch answers with ``{"results": [...]}`` in request order)."""

    scan_id: str | None
    ok: bool
    result: str | None = Field(None, description="recorded | recorded_late | an error code")
    message: str
    replayed: bool = False
    shipment: dict[str, Any] | None = Field(None, description="masked; never the 取件验证码")
    error: ScanError | None = None
    manifest: dict[str, Any] | None = Field(
        None, description="a 交接清单 scanned (QR URL …/m/{code}): count, picked_up, already_moved, who took it over"
    )


# HTTP status of a single scan's error (a batch always answers 200 with per-scan results).
ERROR_STATUS = {
    "invalid-scan": 422,
    "unknown-code": 404,
    "not-your-hall": 403,
    "role-not-allowed": 403,
    "not-ready": 409,
    "already-delivered": 409,
    "shipment-closed": 409,
    "reason-required": 422,
    "unknown-reason": 422,
    "not-returnable": 409,
    "verification-required": 422,
    "wrong-verification-code": 422,
    "verification-locked": 423,
    "manifest-pickup-only": 422,
}


# Problem title of a single scan's error: what the refusal is about, for logs and clients that do not read Chinese.
ERROR_TITLE = {
    "already-delivered": "Shipment already delivered",
    "shipment-closed": "Shipment has ended",
    "verification-required": "Verification code required",
    "wrong-verification-code": "Wrong verification code",
    "verification-locked": "Verification locked",
}


class ScanProblem(Problem):
    """A rejected single scan: the problem body carries the per-scan ``code`` and Chinese ``message`` too."""

    def __init__(self, answer: dict[str, Any]) -> None:
        code = answer["error"]["code"]
        super().__init__(ERROR_STATUS.get(code, 422), code, ERROR_TITLE.get(code, "Scan rejected"), answer["message"])
        self.answer = answer

    def response(self, request: web.Request) -> web.Response:
        body = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": request.path,
            "request_id": request.get(REQUEST_ID),
            **self.answer,
        }
        return web.Response(status=self.status, body=orjson.dumps(body), content_type=CONTENT_TYPE)


async def authenticate_staff(request: web.Request) -> StaffMember:
    return await bearer_owner(
        request,
        request.app[STAFF_CACHE],
        what="staff token",
        unknown="The staff token is unknown or revoked (client API keys do not work here).",
        realm="staff",
    )


_WAYBILL = re.compile(r"\d{10,20}")
_TRACKING = re.compile(f"[{_TRACKING_ALPHABET}]{{13}}")


def parse_code(code: str) -> tuple[str, str] | None:
    """("tracking_code" | "waybill_no", value) from what the scanner or the courier's thumbs produced."""
    text = code.strip()
    if "/t/" in text:  # the label's QR is our tracking URL; the host may differ (old base URL, proxy)
        text = text.rsplit("/t/", 1)[1].split("?")[0].split("#")[0].strip("/")
    text = re.sub(r"[\s-]", "", text).upper()
    if _WAYBILL.fullmatch(text):
        return "waybill_no", text
    if _TRACKING.fullmatch(text):
        return "tracking_code", text
    return None


async def find_shipment_id(conn: AsyncConnection, code: str) -> str | None:
    target = parse_code(code)
    if target is None:
        return None
    column = shipments.c.tracking_code if target[0] == "tracking_code" else shipments.c.waybill_no
    return (await conn.execute(select(shipments.c.id).where(column == target[1]).limit(1))).scalar()


async def _cases(conn: AsyncConnection, shipment_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(shipment_cases.c.case_no, shipment_cases.c.item_name)
        .where(shipment_cases.c.shipment_id == shipment_id)
        .order_by(shipment_cases.c.position)
    )
    return [dict(r._mapping) for r in rows]


async def _status_since(conn: AsyncConnection, row: dict[str, Any]) -> datetime | None:
    """When the current status happened (its latest event): a scan from before then is a late one."""
    return (
        await conn.execute(
            select(func.max(shipment_events.c.occurred_at)).where(
                shipment_events.c.shipment_id == row["id"], shipment_events.c.status == row["status"]
            )
        )
    ).scalar()


@dataclass(slots=True)
class Context:
    member: StaffMember
    max_attempts: int
    now: datetime


# Why a scan is refused: error code → the courier's message (str.format fields given by ``refusal``).
REFUSALS: dict[str, str] = {
    "invalid-scan": "扫描数据不完整或格式不对，请重新扫描",
    "unknown-code": "查不到这个单号，请核对后重新扫描或手工输入",
    "not-your-hall": "这件邮件属于“{department}”，不在您负责的范围内，请交给对应人员",
    "role-not-allowed": "{role}不能登记“{action}”",
    "not-ready": "申请人还没有选择寄递方式，暂不能处理这件邮件",
    "reason-required": "请选择未妥投原因",
    "unknown-reason": "未妥投原因代码“{reason}”不在列表中，请从列表中选择",
    "not-returnable": "这件邮件还没有交给邮政寄出，不能登记退件签收",
    "already-delivered": "这件邮件已经签收，无需再次投递",
    "shipment-closed": "这件邮件的状态是“{state}”，不能再登记",
    "shipment-closed-late": "这件邮件已经是“{state}”，扫描时间虽然更早，也不能再补记{action}",
    "verification-required": "这件是证照类邮件，请输入收件人出示的取件验证码",
    "wrong-verification-code": "取件验证码不正确，还可以再试 {left} 次",
    "verification-locked": "取件验证码错误次数过多，已锁定。请收件人联系办件窗口核实身份后解锁",
    "manifest-pickup-only": "这是交接清单的二维码，只能用于“揽收”：请点“揽收”",
    "manifest-not-yours": "这份交接清单属于“{department}”，不在您负责的范围内，请交给对应人员",
}
ROLE_TEXT = {"clerk": "窗口人员", "courier": "投递员"}
# Refusals that leave the shipment out of the answer: the staff member has no business seeing it.
HIDES_SHIPMENT = frozenset({"unknown-code", "not-your-hall"})
# Refusals because the shipment has ended. A 取件验证码 typed in is checked (and a wrong one counted towards the
# lock) before these, so that a back-dated delivery cannot be used to try codes for free.
ENDED = frozenset({"already-delivered", "shipment-closed"})


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def _fail(scan_id: str | None, refused: Refusal, shipment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answer to a refused scan."""
    return {
        "scan_id": scan_id,
        "ok": False,
        "result": refused.code,
        "message": refused.message,
        "replayed": False,
        "shipment": shipment,
        "error": {"code": refused.code, "message": refused.message},
    }


def _refuse(code: str, template: str | None = None, **fields: object) -> Refusal:
    return Refusal(code, (template or REFUSALS[code]).format(**fields))


def refusal(
    member: StaffMember, scan: ScanIn, row: Mapping[str, Any] | None, late: bool, reasons: Mapping[str, str]
) -> Refusal | None:
    """Why this scan may not be recorded, or None when it may (the 取件验证码 aside, which needs the database).

    ``row`` is the shipment (None when the code finds none); ``late`` says the scan happened before the shipment's
    current status did; ``reasons`` are the EMS failure reasons a failed attempt must name one of.
    """
    if row is None:
        return _refuse("unknown-code")
    if not member.serves(row["department"]):
        return _refuse("not-your-hall", department=row["department"])
    action = scan.action
    if not member.may(action, row["kind"]):
        return _refuse("role-not-allowed", role=ROLE_TEXT.get(member.role, "投递员"), action=ACTION_TEXT[action])
    if row["status"] == "awaiting_applicant":
        return _refuse("not-ready")
    if action == "fail" and scan.reason_code not in reasons:
        if scan.reason_code:
            return _refuse("unknown-reason", reason=scan.reason_code)
        return _refuse("reason-required")
    if action == "returned" and row["status"] not in FINAL and row["status"] not in RETURNABLE:
        return _refuse("not-returnable")
    return _ended(action, row, late)


def _ended(action: str, row: Mapping[str, Any], late: bool) -> Refusal | None:
    """The refusal of a scan on a shipment in a final status, or None when it may be recorded.

    A delivered shipment keeps late pickup/arrival/attempt scans as history; one that ended otherwise
    (cancelled, returned, failed, declined) takes nothing more, and no shipment takes a second delivery.
    """
    if row["status"] not in FINAL:
        return None
    if row["status"] == "delivered":
        if action == "deliver":
            return _refuse("already-delivered")
        if late:
            return None
    state = status_text(row["status"], row["kind"])
    if late:
        return _refuse("shipment-closed", REFUSALS["shipment-closed-late"], state=state, action=ACTION_TEXT[action])
    return _refuse("shipment-closed", state=state)


async def _check_code(conn: AsyncConnection, ctx: Context, row: Mapping[str, Any], given: str | None) -> Refusal | None:
    """None when the hand-over may go ahead; otherwise the refusal (wrong codes are counted and limited)."""
    expected = row["verification_code"]
    if not expected:
        return None
    guard = (
        await conn.execute(select(verification_guards).where(verification_guards.c.shipment_id == row["id"]))
    ).first()
    if guard is not None and guard.locked_at is not None:
        return _refuse("verification-locked")
    given = (given or "").strip()
    if not given:
        return _refuse("verification-required")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    failures = (guard.failures if guard is not None else 0) + 1
    locked = ctx.now if failures >= ctx.max_attempts else None
    values = {"failures": failures, "locked_at": locked, "updated_at": ctx.now}
    if guard is None:
        await conn.execute(insert(verification_guards).values(shipment_id=row["id"], **values))
    else:
        await conn.execute(
            update(verification_guards).where(verification_guards.c.shipment_id == row["id"]).values(**values)
        )
    log.info("verification_failed", extra={"shipment_id": row["id"], "failures": failures, "locked": bool(locked)})
    if locked:
        return _refuse("verification-locked")
    return _refuse("wrong-verification-code", left=ctx.max_attempts - failures)


def _event(
    member: StaffMember, scan: ScanIn, row: Mapping[str, Any], occurred: datetime, reasons: Mapping[str, str]
) -> dict[str, Any]:
    """The shipment event a scan becomes (the keyword arguments of ``apply_event``).

    A failed attempt at an intake not yet collected is a failed door pickup: it moves nothing (the carrier voids
    the order after its last pickup attempt), like EMS's 206."""
    failed = scan.action == "fail"
    pickup = failed and row["kind"] == "intake" and row["status"] in ("pending", "ordered")
    reason = reasons[str(scan.reason_code)] if failed else None
    if failed:
        text = f"{'上门取件' if pickup else '投递'}未成功：{reason}"
    else:
        text = f"扫描登记：{ACTION_TEXT[scan.action]}"
    return {
        "status": row["status"] if pickup else ACTION_STATUS[scan.action],
        "occurred_at": occurred,
        "source": "scan",
        "carrier_code": scan.reason_code if failed else None,
        "carrier_text": text,
        "location": scan.location,
        "dedup_key": f"scan:{member.id}:{scan.scan_id}",
        "reason_code": scan.reason_code if failed else None,
        "reason": reason,
        "attempt": ("pickup" if pickup else "delivery") if failed else None,
    }


async def _record_history(
    conn: AsyncConnection, row: dict[str, Any], event: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Keep a late scan in the history without touching the status.

    apply_event would let a late 未妥投 scan flip a later 派送 (they share a rank, so a real re-attempt can move
    between them); placed by its scan time it is history, so it is written as an event here and nothing else.
    """
    sequence = row["last_sequence"] + 1
    columns = {k: v for k, v in event.items() if k != "attempt"}
    await conn.execute(
        insert(shipment_events).values(shipment_id=row["id"], sequence=sequence, recorded_at=now, **columns)
    )
    values: dict[str, Any] = {"last_sequence": sequence, "updated_at": now}
    if event.get("attempt"):  # a failed attempt counts, whenever it is reported
        values.update(counted_attempt(row, event["attempt"], event))
    await conn.execute(update(shipments).where(shipments.c.id == row["id"]).values(**values))
    return {**row, **values}


async def _record(
    conn: AsyncConnection, row: dict[str, Any], event: dict[str, Any], late: bool, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Write the scan's event; the shipment afterwards, and whether its status changed."""
    status = event["status"]
    if late and may_move(row["status"], status) and RANK[status] == RANK[row["status"]]:
        return await _record_history(conn, row, event, now), False
    applied = await apply_event(conn, row, **event)
    if applied is None:  # the event exists already (a lost answer, resent): same outcome as the first time
        return row, False
    return applied.shipment, applied.changed


def _answer(scan: ScanIn, view: dict[str, Any], changed: bool, late: bool) -> dict[str, Any]:
    """The answer to a recorded scan."""
    action = ACTION_TEXT[scan.action]
    if changed:
        message = f"已登记{action}"
    elif late:
        message = f"已补记{action}（扫描时间较早，邮件当前状态“{view['status_text']}”不变）"
    else:
        message = f"已记录{action}，邮件当前状态“{view['status_text']}”不变"
    return {
        "scan_id": scan.scan_id,
        "ok": True,
        "result": "recorded_late" if late and not changed else "recorded",
        "message": message,
        "replayed": False,
        "shipment": view,
        "error": None,
    }


async def _decide(conn: AsyncConnection, ctx: Context, scan: ScanIn, row: dict[str, Any] | None) -> dict[str, Any]:
    """Apply one scan in the caller's transaction and return its answer (errors are answers, not exceptions)."""
    occurred = min(scan.scanned_at or ctx.now, ctx.now)
    since = await _status_since(conn, row) if row is not None else None
    late = since is not None and occurred < since
    reasons = failure_reasons()
    refused = refusal(ctx.member, scan, row, late, reasons)
    if row is None or (refused is not None and refused.code in HIDES_SHIPMENT):
        return _fail(scan.scan_id, refused or _refuse("unknown-code"))
    cases = await _cases(conn, row["id"])
    view = staff_view(row, cases)
    typed = bool((scan.verification_code or "").strip())
    # The code check comes before anything can be recorded, and before an ended shipment's refusal too when a
    # code was typed in: a wrong one is counted whatever the shipment's state.
    if scan.action == "deliver" and (refused is None or (typed and refused.code in ENDED)):
        wrong = await _check_code(conn, ctx, row, scan.verification_code)
        if wrong is not None:
            return _fail(scan.scan_id, wrong, view)
    if refused is not None:
        return _fail(scan.scan_id, refused, view)
    event = _event(ctx.member, scan, row, occurred, reasons)
    if scan.action == "deliver" and row["verification_code"]:
        # The code was checked above: said in the event, the proof of service reads it there.
        event["carrier_text"] += f"（{STAFF_CODE_MARK}）"
    row, changed = await _record(conn, row, event, late, ctx.now)
    return _answer(scan, staff_view(row, cases), changed, late)


async def _stored(conn: AsyncConnection, staff_id: str, scan_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(select(scans.c.response).where(scans.c.staff_id == staff_id, scans.c.scan_id == scan_id))
    ).first()
    if row is None:
        return None
    return {**(row.response or {}), "replayed": True}


async def _manifest_scan(conn: AsyncConnection, ctx: Context, scan: ScanIn, code: str) -> dict[str, Any]:
    """A 交接清单's QR scanned: the first such scan picks up every parcel on it (see logistics.domain.manifests);
    every scan answers with what that first one did."""
    if scan.action != "pickup":
        return _fail(scan.scan_id, _refuse("manifest-pickup-only"))
    occurred = min(scan.scanned_at or ctx.now, ctx.now)
    done = await manifests.take_over(conn, ctx.member, code, occurred, location=scan.location)
    if done.manifest is None:
        refused, department = done.refused or ("unknown-code", "")
        if refused == "not-your-hall":
            return _fail(scan.scan_id, _refuse(refused, REFUSALS["manifest-not-yours"], department=department))
        return _fail(scan.scan_id, _refuse("unknown-code"))
    view = manifests.summary(done.manifest)
    return {
        "scan_id": scan.scan_id,
        "ok": True,
        "result": "recorded",
        "message": manifests.message(view),
        "replayed": False,
        "shipment": None,
        "error": None,
        "manifest": view,
    }


async def process_scan(request: web.Request, member: StaffMember, scan: ScanIn) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    db = request.app[DB]
    now = utcnow()
    ctx = Context(member, settings.verification_max_attempts, now)
    try:
        async with db.write() as conn:
            stored = await _stored(conn, member.id, scan.scan_id)
            if stored is not None:
                return stored
            manifest_code = manifests.parse_manifest_code(scan.code)
            shipment_id = None
            if manifest_code is not None:
                answer = await _manifest_scan(conn, ctx, scan, manifest_code)
            else:
                shipment_id = await find_shipment_id(conn, scan.code)
                row = await lock_shipment(conn, shipment_id) if shipment_id is not None else None
                answer = await _decide(conn, ctx, scan, row)
            await conn.execute(
                insert(scans).values(
                    staff_id=member.id,
                    scan_id=scan.scan_id,
                    shipment_id=shipment_id,
                    code=scan.code,
                    action=scan.action,
                    reason_code=scan.reason_code,
                    location=scan.location,
                    scanned_at=scan.scanned_at or now,
                    received_at=now,
                    result=answer["result"],
                    response=answer,
                )
            )
    except IntegrityError:
        # The same scan_id arrived twice at once (a resend racing the original): the other one won; answer as it.
        async with db.read() as conn:
            stored = await _stored(conn, member.id, scan.scan_id)
        if stored is None:
            raise
        return stored
    log.info(
        "scan",
        extra={"staff_id": member.id, "action": scan.action, "result": answer["result"], "shipment_id": shipment_id},
    )
    return answer


def _invalid(item: Any, exc: ValidationError) -> dict[str, Any]:
    scan_id = item.get("scan_id") if isinstance(item, dict) and isinstance(item.get("scan_id"), str) else None
    answer = _fail(scan_id, _refuse("invalid-scan"))
    answer["errors"] = from_validation_error(exc).errors
    return answer


@routes.post("/v1/scans")
async def post_scans(request: web.Request) -> web.Response:
    member = await authenticate_staff(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise validation_problem([{"field": "body", "message": "must be a JSON object (one scan, or {scans: [...]})"}])
    if "scans" not in payload:
        try:
            scan = ScanIn.model_validate(payload)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        answer = await process_scan(request, member, scan)
        request.app[SIGNAL].poke()
        if not answer["ok"]:
            raise ScanProblem(answer)
        return json_response(answer)

    items = payload["scans"]
    limit = request.app[SETTINGS].scan_batch_max
    if not isinstance(items, list) or not 1 <= len(items) <= limit or len(payload) != 1:
        raise validation_problem([{"field": "scans", "message": f"must be a list of 1 to {limit} scans"}])
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[tuple[int, ScanIn]] = []
    for n, item in enumerate(items):
        try:
            valid.append((n, ScanIn.model_validate(item)))
        except ValidationError as exc:
            results[n] = _invalid(item, exc)
    # Offline queues arrive in bulk: apply them in the order they happened, so a pickup precedes its delivery.
    epoch = datetime.min.replace(tzinfo=UTC)
    for n, scan in sorted(valid, key=lambda pair: (pair[1].scanned_at or epoch, pair[0])):
        results[n] = await process_scan(request, member, scan)
    request.app[SIGNAL].poke()
    return json_response({"results": results})


@routes.get("/v1/staff/me")
async def staff_me(request: web.Request) -> web.Response:
    member = await authenticate_staff(request)
    return json_response(
        {
            "id": member.id,
            "name": member.name,
            "role": member.role,
            "departments": list(member.departments),
            "actions": sorted(ROLE_ACTIONS[member.role]),
            "failure_reasons": failure_reasons(),
        }
    )


async def _limit_lookups(request: web.Request, member: StaffMember) -> None:
    """A staff token looks up one parcel at a time; a stream of lookups is someone walking the codes."""
    limit = request.app[SETTINGS].staff_lookup_rate_per_minute
    verdict = await request.app[RATE_LIMITER].hit("staff-lookup", member.id, limit, 60)
    if not verdict.allowed:
        log.warning("staff_lookup_limited", extra={"staff_id": member.id})
        raise Problem(
            429,
            "too-many-requests",
            "Too many requests",
            f"Too many lookups with this staff token; retry after {verdict.retry_after} s.",
            headers={"Retry-After": str(verdict.retry_after)},
        )


@routes.get("/v1/scans/lookup")
async def lookup(request: web.Request) -> web.Response:
    """What a scanned code is, before choosing an action (scoped like a scan; nothing is recorded)."""
    member = await authenticate_staff(request)
    await _limit_lookups(request, member)
    code = request.query.get("code", "")
    manifest_code = manifests.parse_manifest_code(code[:300])
    if manifest_code is not None:
        return await _lookup_manifest(request, member, manifest_code)
    async with request.app[DB].read() as conn:
        shipment_id = await find_shipment_id(conn, code) if code else None
        row = None
        if shipment_id is not None:
            found = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
            row = dict(found._mapping) if found is not None else None
        if row is None:
            raise ScanProblem(_fail(None, _refuse("unknown-code")))
        if not member.serves(row["department"]):
            raise ScanProblem(_fail(None, _refuse("not-your-hall", department=row["department"])))
        view = staff_view(row, await _cases(conn, row["id"]))
    return json_response({"shipment": view})


async def _lookup_manifest(request: web.Request, member: StaffMember, code: str) -> web.Response:
    """A 交接清单 before it is scanned for pickup: its department and count (or, once taken over, the outcome)."""
    async with request.app[DB].read() as conn:
        head = await manifests.find_by_code(conn, code)
        manifest = await manifests.load(conn, head["id"], [head["department"]]) if head is not None else None
    if manifest is None:
        raise ScanProblem(_fail(None, _refuse("unknown-code")))
    if not member.serves(manifest["department"]):
        refused = _refuse("not-your-hall", REFUSALS["manifest-not-yours"], department=manifest["department"])
        raise ScanProblem(_fail(None, refused))
    return json_response({"shipment": None, "manifest": manifests.summary(manifest)})
