"""The Redis side: arq connections and the signal that wakes workers. Redis only ever carries signals; the
outbox table in the database says what work exists, so losing Redis loses no work."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from arq.connections import ArqRedis, RedisSettings

log = logging.getLogger(__name__)

PROCESS_DUE = "process_due"


def serialize(value: Any) -> bytes:
    # arq also serialises a failed job's result, which holds the exception: store its repr rather than fail
    # (and log a traceback) on every failed job.
    return orjson.dumps(value, default=repr)


def deserialize(raw: bytes) -> Any:
    return orjson.loads(raw)


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 0
    return settings


def connect(url: str, queue_name: str) -> ArqRedis:
    """A lazily connecting client: the API starts and answers even while Redis is down."""
    pool: ArqRedis = ArqRedis.from_url(url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30)
    pool.job_serializer = serialize
    pool.job_deserializer = deserialize
    pool.default_queue_name = queue_name
    return pool


class WorkSignal:
    """Tells a worker "due work is waiting". Best effort and coalesced: never blocks or fails a caller."""

    def __init__(self, redis: ArqRedis | None) -> None:
        self.redis = redis
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._warned = False

    def poke(self) -> None:
        if self.redis is None:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        assert self.redis is not None
        while True:
            self._again = False
            try:
                async with asyncio.timeout(2):
                    # One job id per 100 ms: a burst of creates wakes a worker once, not once per create.
                    await self.redis.enqueue_job(PROCESS_DUE, _job_id=f"{PROCESS_DUE}:{time.time_ns() // 100_000_000}")
                self._warned = False
            except Exception as exc:  # Redis down: the sweeper finds the work later
                if not self._warned:
                    log.warning("work_signal_failed", extra={"error": type(exc).__name__})
                    self._warned = True
            if not self._again:
                return

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
