from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from webhook_fixtures import MSG_ID, SHIPMENT_ID, Receiver, StaticResolver, make_pki, payload_bytes

from webhooks.schedule import OutcomeKind
from webhooks.sender import DEFAULT_USER_AGENT, Sender
from webhooks.signing import generate_secret, verify
from webhooks.ssrf import AddressPolicy


@pytest.fixture
async def sender(loopback_policy: AddressPolicy) -> AsyncIterator[Sender]:
    s = Sender(loopback_policy, connect_timeout=2, total_timeout=2)
    try:
        yield s
    finally:
        await s.close()


async def test_delivery_verified_by_reference_library(receiver: Receiver, sender: Sender) -> None:
    body = payload_bytes()
    result = await sender.send(receiver.url("/hook"), MSG_ID, body, [receiver.secret])
    assert result.status == 204
    assert result.outcome.kind is OutcomeKind.DELIVERED and result.outcome.delivered
    assert result.error is None and not result.blocked and result.retry_after is None
    assert result.latency_ms > 0
    [d] = receiver.deliveries
    assert d.verified, d.error
    assert d.body == body
    assert json.loads(d.body)["data"]["id"] == SHIPMENT_ID
    assert d.headers["webhook-id"] == MSG_ID
    assert d.headers["webhook-timestamp"] == str(result.timestamp)
    assert d.headers["Content-Type"] == "application/json"
    assert d.headers["User-Agent"] == DEFAULT_USER_AGENT
    assert abs(result.timestamp - time.time()) < 5
    verify(d.body, d.headers, [receiver.secret])


async def test_rotation_both_secrets_verify(receiver: Receiver, sender: Sender) -> None:
    body = payload_bytes()
    secrets = [receiver.secret, receiver.rotated_secret]
    old = await sender.send(receiver.url("/hook"), MSG_ID, body, secrets)
    new = await sender.send(receiver.url("/hook-new-secret"), MSG_ID, body, secrets)
    assert old.status == new.status == 204
    assert [d.verified for d in receiver.deliveries] == [True, True]


async def test_wrong_secret_is_a_failed_attempt(receiver: Receiver, sender: Sender) -> None:
    result = await sender.send(receiver.url("/hook"), MSG_ID, payload_bytes(), [generate_secret()])
    assert result.status == 400
    assert result.outcome.kind is OutcomeKind.RETRY
    assert b"No matching signature" in result.response_body


async def test_old_timestamp_is_rejected_by_receiver(receiver: Receiver, sender: Sender) -> None:
    result = await sender.send(
        receiver.url("/hook"), MSG_ID, payload_bytes(), [receiver.secret], timestamp=int(time.time()) - 600
    )
    assert result.status == 400 and not result.outcome.delivered
    [d] = receiver.deliveries
    assert not d.verified and d.error is not None and "too old" in d.error


async def test_each_attempt_gets_a_fresh_timestamp_and_signature(
    receiver: Receiver, loopback_policy: AddressPolicy
) -> None:
    clock_offset = [0.0]
    async with Sender(loopback_policy, clock=lambda: time.time() + clock_offset[0]) as s:
        body = payload_bytes()
        first = await s.send(receiver.url("/hook"), MSG_ID, body, [receiver.secret])
        clock_offset[0] = 90
        second = await s.send(receiver.url("/hook"), MSG_ID, body, [receiver.secret])
    assert first.status == second.status == 204
    a, b = receiver.deliveries
    assert a.headers["webhook-id"] == b.headers["webhook-id"] == MSG_ID  # same message: receivers dedupe on it
    assert int(b.headers["webhook-timestamp"]) - int(a.headers["webhook-timestamp"]) >= 89
    assert a.headers["webhook-signature"] != b.headers["webhook-signature"]


@pytest.mark.parametrize(
    ("path", "kind", "retry_after"),
    [
        ("/status/200", OutcomeKind.DELIVERED, None),
        ("/status/400", OutcomeKind.RETRY, None),
        ("/status/410", OutcomeKind.GONE, None),
        ("/status/429?retry_after=30", OutcomeKind.SLOW_DOWN, 30.0),
        ("/status/503?retry_after=7200", OutcomeKind.SLOW_DOWN, 3600.0),
        ("/status/500", OutcomeKind.RETRY, None),
        ("/status/504", OutcomeKind.SLOW_DOWN, None),
    ],
)
async def test_status_outcomes_over_http(
    receiver: Receiver, sender: Sender, path: str, kind: OutcomeKind, retry_after: float | None
) -> None:
    result = await sender.send(receiver.url(path), MSG_ID, payload_bytes(), [receiver.secret])
    assert result.outcome.kind is kind
    assert result.retry_after == retry_after
    assert result.error is None


async def test_redirect_towards_blocked_address_is_not_followed(receiver: Receiver, sender: Sender) -> None:
    for target in ("http://169.254.169.254/latest/meta-data/iam/", receiver.url("/hook")):
        result = await sender.send(
            receiver.url("/redirect").replace("/redirect", "/redirect?to=" + target),
            MSG_ID,
            payload_bytes(),
            [receiver.secret],
        )
        assert result.status == 302
        assert result.outcome.kind is OutcomeKind.RETRY and not result.outcome.delivered
        assert "redirect" in result.outcome.reason
    # Had a redirect been followed, /hook would have seen a request.
    assert receiver.at("/hook") == []
    assert len(receiver.at("/redirect")) == 2


async def test_307_redirect_is_not_followed_either(receiver: Receiver, sender: Sender) -> None:
    url = receiver.url("/redirect") + "?code=307&to=" + receiver.url("/hook")
    result = await sender.send(url, MSG_ID, payload_bytes(), [receiver.secret])
    assert result.status == 307 and not result.outcome.delivered
    assert receiver.at("/hook") == []


async def test_response_body_truncated_at_cap(receiver: Receiver, loopback_policy: AddressPolicy) -> None:
    async with Sender(loopback_policy, max_response_bytes=4096) as s:
        big = await s.send(receiver.url("/big?size=100000"), MSG_ID, payload_bytes(), [receiver.secret])
        small = await s.send(receiver.url("/big?size=100"), MSG_ID, payload_bytes(), [receiver.secret])
    assert big.status == 200 and len(big.response_body) == 4096 and big.response_truncated
    assert small.status == 200 and small.response_body == b"x" * 100 and not small.response_truncated


async def test_hanging_receiver_gives_error_result(receiver: Receiver, loopback_policy: AddressPolicy) -> None:
    async with Sender(loopback_policy, connect_timeout=0.5, total_timeout=0.3) as s:
        started = time.perf_counter()
        result = await s.send(receiver.url("/hang"), MSG_ID, payload_bytes(), [receiver.secret])
        elapsed = time.perf_counter() - started
    assert result.status is None
    assert result.error == "timed out after 0.3s"
    assert result.outcome.kind is OutcomeKind.RETRY
    assert 0.25 <= elapsed < 1.5
    assert 250 <= result.latency_ms < 1500


async def test_stalled_body_after_200_keeps_the_status(receiver: Receiver, loopback_policy: AddressPolicy) -> None:
    async with Sender(loopback_policy, total_timeout=0.3) as s:
        result = await s.send(receiver.url("/slow-body"), MSG_ID, payload_bytes(), [receiver.secret])
    assert result.status == 200
    assert result.error is not None and "timed out" in result.error
    assert result.outcome.delivered  # the receiver answered 200 before it stalled
    assert result.response_body == b"accepted "


async def test_connection_refused_is_an_error_result(sender: Sender) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await sender.send(f"http://127.0.0.1:{port}/hook", MSG_ID, payload_bytes(), [generate_secret()])
    assert result.status is None and not result.blocked
    assert result.error is not None and "ClientConnectorError" in result.error
    assert result.outcome.kind is OutcomeKind.RETRY


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
        "http://localhost:9/hook",
    ],
)
async def test_sender_refuses_blocked_targets(url: str) -> None:
    async with Sender(AddressPolicy(), total_timeout=2) as s:
        started = time.perf_counter()
        result = await s.send(url, MSG_ID, payload_bytes(), [generate_secret()])
    assert result.blocked and result.status is None
    assert result.error is not None and "blocked by webhook address policy" in result.error
    assert not result.outcome.delivered
    assert time.perf_counter() - started < 1


async def test_sender_refuses_name_resolving_to_private_address_at_connect_time() -> None:
    resolver = StaticResolver({"hook.sj-spxt.example": "10.1.2.3"})
    async with Sender(AddressPolicy(), resolver=resolver) as s:
        result = await s.send("https://hook.sj-spxt.example/v1/webhooks", MSG_ID, payload_bytes(), [generate_secret()])
    assert resolver.asked == ["hook.sj-spxt.example"]  # the URL pre-check let it through; the socket did not
    assert result.blocked and result.status is None
    assert result.error is not None and "10.1.2.3" in result.error


async def test_name_with_several_blocked_addresses_is_reported_blocked() -> None:
    # aiohttp tries every address (aiohappyeyeballs merging their refusals) before giving up.
    resolver = StaticResolver({"hook.sj-spxt.example": ["10.1.2.3", "192.168.7.8", "fd00:ec2::254"]})
    async with Sender(AddressPolicy(), resolver=resolver) as s:
        result = await s.send("http://hook.sj-spxt.example/", MSG_ID, payload_bytes(), [generate_secret()])
    assert result.blocked and result.status is None
    assert result.error is not None and "blocked by webhook address policy" in result.error


async def test_loopback_receiver_blocked_unless_policy_allows(receiver: Receiver) -> None:
    resolver = StaticResolver({"approval.sj-spxt.example": "127.0.0.1"})
    url = receiver.url("/hook").replace("127.0.0.1", "approval.sj-spxt.example")
    async with Sender(AddressPolicy(), resolver=resolver) as strict:
        refused = await strict.send(url, MSG_ID, payload_bytes(), [receiver.secret])
    async with Sender(AddressPolicy(allow_loopback=True), resolver=resolver) as lenient:
        accepted = await lenient.send(url, MSG_ID, payload_bytes(), [receiver.secret])
    assert refused.blocked and refused.status is None
    assert accepted.status == 204 and not accepted.blocked
    assert [d.verified for d in receiver.deliveries] == [True]


async def test_unresolvable_name_is_an_error_result() -> None:
    async with Sender(AddressPolicy(), resolver=StaticResolver({})) as s:
        result = await s.send("https://nowhere.sj-spxt.example/", MSG_ID, payload_bytes(), [generate_secret()])
    assert result.status is None and not result.blocked and result.error


@pytest.mark.parametrize("url", ["ftp://hook.sj-spxt.example/", "not a url", "http://"])
async def test_invalid_urls_are_error_results(url: str) -> None:
    async with Sender(AddressPolicy()) as s:
        result = await s.send(url, MSG_ID, payload_bytes(), [generate_secret()])
    assert result.status is None and result.error is not None and "invalid webhook URL" in result.error


async def test_bad_secret_raises_before_any_io() -> None:
    async with Sender(AddressPolicy()) as s:
        with pytest.raises(ValueError):
            await s.send("https://hook.sj-spxt.example/", MSG_ID, b"{}", ["whsec_short"])


async def test_closed_sender_refuses_to_send(loopback_policy: AddressPolicy) -> None:
    s = Sender(loopback_policy)
    await s.close()
    await s.close()
    with pytest.raises(RuntimeError):
        await s.send("http://127.0.0.1:9/", MSG_ID, b"{}", [generate_secret()])


def test_sender_can_be_built_outside_the_event_loop() -> None:
    Sender(AddressPolicy(), connect_timeout=1, total_timeout=3)
    with pytest.raises(ValueError):
        Sender(AddressPolicy(), total_timeout=0)


async def test_https_delivery_to_a_name_behind_a_private_ca(tmp_path: Path) -> None:
    host = "approval.sj-spxt.example"
    pki = make_pki(tmp_path, host)
    state = Receiver()
    server = TestServer(state.app(), host="127.0.0.1")
    await server.start_server(ssl=pki.server_ctx)
    state.server = server
    url = server.make_url("/hook").with_scheme("https").with_host(host)
    resolver = StaticResolver({host: "127.0.0.1"})
    try:
        async with Sender(AddressPolicy(allow_loopback=True), resolver=resolver, ssl_context=pki.client_ctx) as s:
            ok = await s.send(url, MSG_ID, payload_bytes(), [state.secret])
        # Without the hall's CA the certificate is refused: verification is never switched off.
        async with Sender(AddressPolicy(allow_loopback=True), resolver=resolver) as s:
            untrusted = await s.send(url, MSG_ID, payload_bytes(), [state.secret])
        async with Sender(AddressPolicy(), resolver=resolver, ssl_context=pki.client_ctx) as s:
            refused = await s.send(url, MSG_ID, payload_bytes(), [state.secret])
    finally:
        await server.close()
    assert ok.status == 204 and ok.error is None
    assert untrusted.status is None and untrusted.error is not None and "certificate" in untrusted.error.lower()
    assert not untrusted.blocked
    assert refused.blocked and refused.status is None
    assert [d.verified for d in state.deliveries] == [True]
