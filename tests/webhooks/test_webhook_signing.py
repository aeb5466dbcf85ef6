from __future__ import annotations

import base64
import time

import aiohttp
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from webhook_fixtures import MSG_ID, Receiver, payload_bytes

from webhooks.signing import (
    SECRET_PREFIX,
    VerificationError,
    decode_secret,
    generate_secret,
    headers,
    sign,
    verify,
)

# Fixed material so the exact-value test below pins the wire format.
FIXED_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
FIXED_TS = 1778285667  # 2026-05-09T08:14:27+08:00


def test_generated_secret_shape_and_uniqueness() -> None:
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for s in secrets:
        assert s.startswith(SECRET_PREFIX)
        assert 24 <= len(decode_secret(s)) <= 32


def test_generated_secret_accepted_by_reference_library() -> None:
    Webhook(generate_secret())


def test_signature_matches_reference_library_exactly() -> None:
    body = payload_bytes()
    ours = sign(MSG_ID, FIXED_TS, body, [FIXED_SECRET])
    from datetime import UTC, datetime

    theirs = Webhook(FIXED_SECRET).sign(MSG_ID, datetime.fromtimestamp(FIXED_TS, UTC), body.decode())
    assert ours == theirs
    assert ours.startswith("v1,")


def test_headers_carry_everything_a_receiver_needs() -> None:
    body = payload_bytes()
    h = headers(MSG_ID, FIXED_TS, body, [FIXED_SECRET])
    assert h == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(FIXED_TS),
        "webhook-signature": sign(MSG_ID, FIXED_TS, body, [FIXED_SECRET]),
        "content-type": "application/json",
    }


def test_rotation_signs_with_every_secret_space_separated() -> None:
    old, new = generate_secret(), generate_secret()
    now = int(time.time())
    body = payload_bytes()
    h = headers(MSG_ID, now, body, [old, new])
    parts = h["webhook-signature"].split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") for p in parts)
    # Receivers on either side of the rotation accept the same delivery.
    assert Webhook(old).verify(body, h)["data"]["waybill_no"] == "1295780512499"
    assert Webhook(new).verify(body, h)["data"]["sequence"] == 7
    verify(body, h, [old])
    verify(body, h, [new])


def test_reference_library_rejects_changed_body_and_old_timestamp() -> None:
    secret = generate_secret()
    body = payload_bytes()
    now = int(time.time())
    h = headers(MSG_ID, now, body, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b'"sequence":7', b'"sequence":8'), h)
    stale = headers(MSG_ID, now - 600, body, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def test_own_verify_tolerance_window_and_failures() -> None:
    secret = generate_secret()
    body = payload_bytes()
    h = headers(MSG_ID, FIXED_TS, body, [secret])
    verify(body, h, [secret], now=FIXED_TS + 299)
    verify(body, h, [secret], now=FIXED_TS - 299)
    with pytest.raises(VerificationError, match="too old"):
        verify(body, h, [secret], now=FIXED_TS + 301)
    with pytest.raises(VerificationError, match="too new"):
        verify(body, h, [secret], now=FIXED_TS - 301)
    verify(body, h, [secret], now=FIXED_TS + 3000, tolerance_seconds=3600)
    with pytest.raises(VerificationError, match="no matching"):
        verify(body + b" ", h, [secret], now=FIXED_TS)
    with pytest.raises(VerificationError, match="no matching"):
        verify(body, h, [generate_secret()], now=FIXED_TS)
    with pytest.raises(VerificationError, match="missing webhook-signature"):
        verify(body, {k: v for k, v in h.items() if k != "webhook-signature"}, [secret], now=FIXED_TS)
    with pytest.raises(VerificationError, match="no v1"):
        verify(body, {**h, "webhook-signature": "v1a,abc"}, [secret], now=FIXED_TS)


def test_verify_accepts_any_header_case() -> None:
    secret = generate_secret()
    body = payload_bytes()
    h = {k.title(): v for k, v in headers(MSG_ID, FIXED_TS, body, [secret]).items()}
    verify(body, h, [secret], now=FIXED_TS)


@pytest.mark.parametrize(
    "bad",
    ["whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode(), ""],
)
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        sign(MSG_ID, FIXED_TS, b"{}", [bad])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        sign(MSG_ID, FIXED_TS, b"{}", generate_secret())  # a bare string is not a list of secrets
    with pytest.raises(ValueError):
        sign(MSG_ID, FIXED_TS, b"{}", [])
    for bad_id in ("", "msg 1", "msg_1\r\nx-evil: 1"):
        with pytest.raises(ValueError):
            sign(bad_id, FIXED_TS, b"{}", [generate_secret()])


@pytest.mark.parametrize("char", ["\t", "\x00", "\x1f", "\x7f", "\x85", "\xa0", "\u2028", "\u3000"])
def test_ids_with_any_whitespace_or_control_character_are_refused(char: str) -> None:
    with pytest.raises(ValueError):
        sign(f"msg_{char}1", FIXED_TS, b"{}", [generate_secret()])
    sign("msg_01JD8Z6Q2M4X7V3K9T1R5N8B2C-ä", FIXED_TS, b"{}", [generate_secret()])


def test_each_secret_signs_with_its_own_key_however_many_are_in_use() -> None:
    # More secrets than the keyed-HMAC cache holds: an eviction must never sign with another client's key.
    body = payload_bytes()
    many = [generate_secret() for _ in range(600)]
    for secret in [*many, *many[:5]]:
        h = headers(MSG_ID, int(time.time()), body, [secret])
        Webhook(secret).verify(body, h)
        verify(body, h, [secret])
    with pytest.raises(VerificationError):
        verify(body, headers(MSG_ID, int(time.time()), body, [many[0]]), [many[1]])


async def test_receiver_over_http_rejects_tampered_body(receiver: Receiver) -> None:
    body = payload_bytes()
    h = headers(MSG_ID, int(time.time()), body, [receiver.secret])
    tampered = body.replace(b"delivered", b"returned")
    async with aiohttp.ClientSession() as session:
        async with session.post(receiver.url("/hook"), data=tampered, headers=h) as resp:
            assert resp.status == 400
        async with session.post(receiver.url("/hook"), data=body, headers=h) as resp:
            assert resp.status == 204
    assert [d.verified for d in receiver.deliveries] == [False, True]
