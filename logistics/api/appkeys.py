"""Typed keys of what the API application and its requests carry: the resources a handler reaches through
``request.app[...]``, and the per-request values the middleware sets."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web
from arq.connections import ArqRedis

if TYPE_CHECKING:
    from carriers.base import Carrier
    from logistics.accounts.credential_cache import CredentialCache
    from logistics.accounts.revocation import RevocationListener
    from logistics.accounts.staff import StaffMember
    from logistics.config import Settings
    from logistics.redis.queue import WorkSignal
    from logistics.redis.ratelimit import RateLimiter
    from logistics.storage.db import Database
    from logistics.storage.group_commit import GroupCommitter
    from logistics.storage.outbox_batch import TaskBatcher

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB: web.AppKey[Database] = web.AppKey("db")
REDIS = web.AppKey("redis", ArqRedis)
SIGNAL: web.AppKey[WorkSignal] = web.AppKey("signal")
COMMITTER: web.AppKey[GroupCommitter] = web.AppKey("committer")
TASK_BATCHER: web.AppKey[TaskBatcher] = web.AppKey("task_batcher")
CARRIER: web.AppKey[Carrier] = web.AppKey("carrier")
# Client API key → client id, and staff token → staff member.
KEY_CACHE: web.AppKey[CredentialCache[str]] = web.AppKey("key_cache")
STAFF_CACHE: web.AppKey[CredentialCache[StaffMember]] = web.AppKey("staff_cache")
REVOCATIONS: web.AppKey[RevocationListener] = web.AppKey("revocations")
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
# What validating a create needs beyond its body (the halls by department), or None.
CREATE_CONTEXT: web.AppKey[dict[str, Any] | None] = web.AppKey("create_context")
ACCESS_LOG = web.AppKey("access_log", bool)
METRICS_ALLOW: web.AppKey[tuple[Network, ...]] = web.AppKey("metrics_allow")

REQUEST_ID = web.RequestKey("request_id", str)
SHIPMENT_ID = web.RequestKey("shipment_id", str)
