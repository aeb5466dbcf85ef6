"""The aiohttp application: middlewares, routes, and the resources it owns."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from logistics import logs, metrics
from logistics.accounts.revocation import RevocationListener, redis_url
from logistics.api import carrier_push, docs, returns, shipments, webhooks
from logistics.api import labels as label_api
from logistics.api import proof as proof_api
from logistics.api import statements as statements_api
from logistics.api.appkeys import (
    ACCESS_LOG,
    CARRIER,
    COMMITTER,
    CREATE_CONTEXT,
    DB,
    KEY_CACHE,
    METRICS_ALLOW,
    REDIS,
    REQUEST_ID,
    REVOCATIONS,
    SETTINGS,
    SIGNAL,
    STAFF_CACHE,
    TASK_BATCHER,
    Network,
)
from logistics.api.auth import key_cache
from logistics.api.docs import openapi_document
from logistics.api.errors import Problem, validation_problem
from logistics.carrier import create_carrier
from logistics.config import Settings
from logistics.console import actions as console_actions
from logistics.console import create as console_create
from logistics.console import handover as console_handover
from logistics.console import printing as console_printing
from logistics.console import statements as console_statements
from logistics.console import views as console
from logistics.domain import ids
from logistics.domain.halls import load_delivery_days, load_halls, load_payment_modes
from logistics.gongshi import views as gongshi
from logistics.pages import views as people_pages
from logistics.redis.queue import WorkSignal, connect
from logistics.redis.ratelimit import client_ip
from logistics.storage.db import Database, DatabaseUnavailable, is_unavailable
from logistics.storage.group_commit import GroupCommitter
from logistics.storage.outbox_batch import TaskBatcher

log = logging.getLogger("logistics.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "too-many-requests",
}


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _REQUEST_ID.fullmatch(incoming) else ids.request_id()
    request[REQUEST_ID] = rid
    token = logs.request_id.set(rid)
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await _problems(request, handler, route)
    finally:
        logs.request_id.reset(token)
    elapsed = time.perf_counter() - started
    response.headers["X-Request-ID"] = rid
    _observe(request.method, route, response.status, elapsed)
    if response.status >= 500 or request.app[ACCESS_LOG]:
        logs.access(rid, request.method, route, response.status, elapsed)
    return response


# Labelled children of the request metrics: .labels() costs as much as the update itself, on every request.
_COUNTERS: dict[tuple[str, str, int], Any] = {}
_LATENCIES: dict[str, Any] = {}


def _observe(method: str, route: str, status: int, elapsed: float) -> None:
    counter = _COUNTERS.get((method, route, status))
    if counter is None:
        if len(_COUNTERS) > 10_000:  # methods and routes are bounded, but never let a cache grow without end
            _COUNTERS.clear()
        counter = _COUNTERS[method, route, status] = metrics.HTTP_REQUESTS.labels(method, route, str(status))
    counter.inc()
    latency = _LATENCIES.get(route)
    if latency is None:
        latency = _LATENCIES[route] = metrics.HTTP_LATENCY.labels(route)
    latency.observe(elapsed)


def _unknown_query_parameters(request: web.Request, route: str) -> list[dict[str, str]]:
    """Query parameters the OpenAPI document does not declare for this operation are an error, not ignored:
    a typo such as `?stauts=delivered` would otherwise silently return everything."""
    if not request.query_string:  # nearly every request: nothing to check
        return []
    operation = openapi_document()["paths"].get(route, {}).get(request.method.lower())
    if operation is None:
        return []
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    return [
        {"field": name or "(empty)", "message": "is not a query parameter of this endpoint"}
        for name in request.query
        if name not in declared
    ]


async def _problems(request: web.Request, handler: Handler, route: str) -> web.StreamResponse:
    try:
        unknown = _unknown_query_parameters(request, route)
        if unknown:
            raise validation_problem(unknown)
        return await handler(request)
    except Problem as problem:
        return problem.response(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = STATUS_SLUGS.get(exc.status, "error")
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else None
        if exc.status == 413:
            detail = f"The request body is larger than {request.app[SETTINGS].max_body_bytes} bytes."
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return Problem(exc.status, slug, exc.reason, detail, headers=headers).response(request)
    except Exception as exc:
        if is_unavailable(exc):
            return database_unavailable(request, route, exc)
        log.exception("unhandled_error", extra={"route": route})  # the template: a path may hold a token
        return Problem(
            500,
            "internal",
            "Internal error",
            "Retry later; the request id helps the operators.",
        ).response(request)


# Seconds a client is asked to wait when the database is down: a PostgreSQL restart takes a few.
DATABASE_RETRY_AFTER = 5


def database_unavailable(request: web.Request, route: str, exc: Exception) -> web.Response:
    """The answer to any request while the database is unreachable: 503 with Retry-After, never a 500. A person
    opening one of the pages gets a page in Chinese; a program, problem+json."""
    # One short line, no traceback: during an outage every request ends here, and the cause is the same.
    log.warning("database_unavailable", extra={"route": route, "error": type(exc).__name__})
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
    if people_pages.is_page_request(request):
        return people_pages.unavailable_page(headers)
    return Problem(
        503,
        "database-unavailable",
        "Database unavailable",
        "The database is unreachable for the moment; retry with the same Idempotency-Key after Retry-After.",
        headers=headers,
    ).response(request)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database and Redis both answer within their timeouts; otherwise 503 naming what is not."""
    checks: dict[str, str] = {}
    try:
        await request.app[DB].ping()
        checks["database"] = "ok"
    except DatabaseUnavailable:
        # A driver's error text can name hosts, users and paths: it goes to the log, never to the answer.
        log.warning("readiness_database_unreachable", exc_info=True)
        checks["database"] = "database unreachable"
    redis = request.app[REDIS]
    try:
        async with asyncio.timeout(2.0):
            await redis.ping()
        checks["redis"] = "ok"
    except Exception:  # any client error means "not ready"
        log.warning("readiness_redis_unreachable", exc_info=True)
        checks["redis"] = "redis unreachable"
    ok = all(v == "ok" for v in checks.values())
    if ok:
        return web.json_response({"status": "ok", "checks": checks})
    reason = "; ".join(v for v in checks.values() if v != "ok")
    return web.json_response(
        {"status": "unavailable", "reason": reason, "checks": checks},
        status=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def allowed_networks(setting: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip())


def address_allowed(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # "unknown" or a forwarded value that is not an address
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


async def metrics_endpoint(request: web.Request) -> web.Response:
    settings: Settings = request.app[SETTINGS]
    # X-Forwarded-For counts only when the operator said a proxy sets it; otherwise the peer address decides.
    if not address_allowed(client_ip(request, settings.trust_forwarded_for), request.app[METRICS_ALLOW]):
        raise Problem(
            403, "forbidden", "Forbidden", "Metrics are served only to the addresses in LOGISTICS_METRICS_ALLOW."
        )
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _nosniff(_: web.Request, response: web.StreamResponse) -> None:
    """On every answer, streamed and static ones included: a browser must never read a JSON body or a
    user-influenced file as HTML or script."""
    response.headers["X-Content-Type-Options"] = "nosniff"


async def _revocations(app: web.Application) -> AsyncIterator[None]:
    settings: Settings = app[SETTINGS]
    listener = RevocationListener(redis_url(settings), [app[KEY_CACHE], app[STAFF_CACHE]])
    app[REVOCATIONS] = listener
    listener.start()
    yield
    await listener.stop()


_gc_tuned = False


async def _tune_gc(_: web.Application) -> None:
    """Once per process, when the first app starts: a create allocates hundreds of short-lived objects, and with
    the default thresholds the collector runs every few requests and, now and then, walks every object of the
    process (pydantic schemas, SQLAlchemy metadata, the OpenAPI document) — a large share of the API's CPU
    and its worst latencies. What exists at startup lives for the whole process, so it is frozen out of the
    collector's sight; young objects are collected every 10,000 allocations instead of 700."""
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def create_app(settings: Settings, *, db: Database | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[request_context])
    app[SETTINGS] = settings
    logs.protect_library_loggers()  # aiohttp's own lines quote raw requests, however logging is configured
    app[METRICS_ALLOW] = allowed_networks(settings.metrics_allow)
    app.on_response_prepare.append(_nosniff)
    # What validating a create needs beyond its body: the halls' addresses, when the operator configured them.
    halls = load_halls(settings.halls_file)
    days = load_delivery_days(settings.halls_file)  # the statutory deadline of each department, in working days
    modes = load_payment_modes(settings.halls_file)  # who pays EMS, by department (default monthly)
    app[CREATE_CONTEXT] = {"halls": halls, "delivery_days": days, "payment_modes": modes} if halls else None
    # One access line per request (errors ≥ 500 are logged whatever the setting).
    app[ACCESS_LOG] = settings.access_log

    async def resources(app: web.Application) -> AsyncIterator[None]:
        database = db or Database(settings.resolved_database_url)
        app[DB] = database
        app[KEY_CACHE] = key_cache(database, settings.api_key_cache_seconds)
        redis = connect(redis_url(settings), settings.queue_name)
        app[REDIS] = redis
        app[SIGNAL] = WorkSignal(redis)
        committer = GroupCommitter(database)
        committer.on_commit = app[SIGNAL].poke
        app[COMMITTER] = committer
        await committer.start()
        app[TASK_BATCHER] = TaskBatcher(database)
        app[TASK_BATCHER].start()
        app[CARRIER] = create_carrier(settings)  # parses pushes; never calls out from the API
        yield
        await app[CARRIER].close()
        await app[TASK_BATCHER].stop()
        await committer.stop()
        await app[SIGNAL].close()
        await redis.aclose()
        if db is None:
            await database.dispose()

    app.on_startup.append(_tune_gc)
    app.cleanup_ctx.append(resources)
    app.router.add_routes(shipments.routes)
    app.router.add_routes(returns.routes)
    app.router.add_routes(docs.routes)
    app.router.add_routes(carrier_push.routes)
    app.router.add_routes(webhooks.routes)
    app.router.add_routes(label_api.routes)
    app.router.add_routes(proof_api.routes)
    app.router.add_routes(statements_api.routes)  # /v1/statements
    people_pages.setup(app)  # scans, tracking, applicant, complaints, staff page
    console.setup(app)  # the hall's console, /console
    console_actions.setup(app)  # its actions on a shipment
    console_create.setup(app)  # create by hand, /console/new, and the label to print
    console_printing.setup(app)  # batch labels of a selection
    console_handover.setup(app)  # the courier's hand-over manifest, /m/{code}
    console_statements.setup(app)  # its monthly statement download
    gongshi.setup(app)  # the public 公示 figures, /gongshi
    app.cleanup_ctx.append(_revocations)  # after the pages' context: it needs both credential caches
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
