"""Fixtures for the webhook tests; the helpers live in webhook_fixtures (a unique module name, since test
folders here are not packages)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from webhook_fixtures import Receiver

from webhooks.ssrf import AddressPolicy


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    server = TestServer(state.app(), host="127.0.0.1")
    await server.start_server()
    state.server = server
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture
def loopback_policy() -> AddressPolicy:
    return AddressPolicy(allow_loopback=True)
