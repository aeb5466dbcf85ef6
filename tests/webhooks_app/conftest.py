"""Fixtures for the app-level webhook tests: a hall whose approval system listens on a real local receiver, a
controllable clock, and a worker runtime driven in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from webhooks_app_support import Clock, Receiver

from logistics.accounts import clients
from logistics.config import Settings
from logistics.jobs import webhook_delivery
from logistics.jobs.runner import Runtime
from logistics.redis.queue import WorkSignal
from logistics.storage.db import Database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wh_settings(settings: Settings) -> Settings:
    # The receiver listens on 127.0.0.1, which production refuses; the operator switch allows it here.
    settings.webhook_allow_loopback = True
    return settings


@pytest.fixture
async def receiver(hall: clients.Credentials) -> AsyncIterator[Receiver]:
    state = Receiver(secrets=[hall.webhook_secret])
    await state.start()
    try:
        yield state
    finally:
        await state.stop()


@pytest.fixture
async def subscribed(db: Database, hall: clients.Credentials, receiver: Receiver) -> clients.Credentials:
    """The hall with its approval system's receiver as webhook endpoint."""
    await clients.set_webhook(db, hall.id, receiver.url)
    return hall


@pytest.fixture
async def rt(wh_settings: Settings, db: Database, clock: Clock) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings=wh_settings, db=db, signal=WorkSignal(None))
    runtime.services[webhook_delivery.CLOCK] = clock
    webhook_delivery.setup(runtime)
    yield runtime
    await runtime.services[webhook_delivery.SENDER].close()
