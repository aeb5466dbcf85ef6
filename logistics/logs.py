"""Structured logs: one JSON object per line, with the request id that follows a shipment into the workers.

Log events carry ids, statuses and counts — never names, phones or addresses (mask with labels.privacy
when a person must be referred to).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # We log requests and tasks ourselves, with ids; these libraries' per-request/per-job lines are noise.
    # aiosqlite logs every statement with its parameters at DEBUG: personal data and 取件验证码 (PRODUCT §9).
    for name in ("aiohttp.access", "arq.worker", "arq.jobs", "alembic", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)


ACCESS = logging.getLogger("logistics.access")


def access(request_id: str, method: str, route: str, status: int, seconds: float) -> None:
    """The access line of one API request, ``http_request``, on the ``logistics.access`` logger.

    ``route`` is the matched route's template (``/v1/shipments/{id}``, ``/a/{token}``), never the path asked
    for: paths and queries hold tokens, applicant links and personal data.

    One record, made here and handed to the logger: every request of the create endpoint pays for this line,
    and ``Logger.info`` would also walk the stack for the caller's file and line, which the line never shows.
    """
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    record = logging.LogRecord(ACCESS.name, logging.INFO, __file__, 0, "http_request", None, None)
    record.__dict__.update(
        request_id=request_id, method=method, route=route, status=status, ms=round(seconds * 1000, 2)
    )
    ACCESS.handle(record)
