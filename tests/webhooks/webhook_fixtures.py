"""Helpers for the webhook tests: a real approval-system receiver on 127.0.0.1 and realistic webhook payloads.

The receiver verifies with the reference ``standardwebhooks`` library, exactly as an approval system would,
so these tests prove interoperability rather than agreement with ourselves.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks.signing import generate_secret

SHIPMENT_ID = "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"
MSG_ID = "msg_01JD8Z9K4T6W2R8P5N3M7Q1B4X"


def delivered_payload(timestamp: str = "2026-05-09T08:14:27+08:00", sequence: int = 7) -> dict[str, Any]:
    return {
        "type": "shipment.delivered",
        "timestamp": timestamp,
        "data": {
            "id": SHIPMENT_ID,
            "kind": "delivery",
            "waybill_no": "1295780512499",
            "status": "delivered",
            "sequence": sequence,
            "cases": [{"case_no": "410106-2018-00095", "item_name": "食品经营许可证核发"}],
            "department": "上街区市场监督管理局",
            "tracking_url": "https://ems.sj-zwfw.example/t/Q7M2K9X4TB",
            "event": {
                "sequence": sequence,
                "status": "delivered",
                "occurred_at": timestamp,
                "source": "carrier_push",
                "carrier_code": "I",
                "carrier_text": "已妥投,本人签收",
                "location": "河南省郑州市上街区",
            },
            "metadata": {"approval_system": "sj-spxt"},
        },
    }


def payload_bytes(**kw: Any) -> bytes:
    return json.dumps(delivered_payload(**kw), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None


@dataclass
class Receiver:
    """State of the fake approval system; routes decide how it answers."""

    secret: str = field(default_factory=generate_secret)
    rotated_secret: str = field(default_factory=generate_secret)
    deliveries: list[Delivery] = field(default_factory=list)
    server: TestServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def at(self, path: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.path == path]

    async def _verify_with(self, request: web.Request, secret: str) -> web.Response:
        body = await request.read()
        hdrs = dict(request.headers)
        try:
            Webhook(secret).verify(body, hdrs)
        except WebhookVerificationError as exc:
            self.deliveries.append(Delivery(request.path, hdrs, body, False, str(exc)))
            return web.json_response({"error": str(exc)}, status=400)
        self.deliveries.append(Delivery(request.path, hdrs, body, True, None))
        return web.Response(status=204)

    async def hook(self, request: web.Request) -> web.Response:
        return await self._verify_with(request, self.secret)

    async def hook_new_secret(self, request: web.Request) -> web.Response:
        return await self._verify_with(request, self.rotated_secret)

    async def status(self, request: web.Request) -> web.Response:
        await request.read()
        self.deliveries.append(Delivery(request.path, dict(request.headers), b"", False, None))
        hdrs = {}
        if "retry_after" in request.query:
            hdrs["Retry-After"] = request.query["retry_after"]
        return web.Response(status=int(request.match_info["code"]), headers=hdrs, text="稍后重试")

    async def redirect(self, request: web.Request) -> web.Response:
        await request.read()
        self.deliveries.append(Delivery(request.path, dict(request.headers), b"", False, None))
        return web.Response(status=int(request.query.get("code", "302")), headers={"Location": request.query["to"]})

    async def big(self, request: web.Request) -> web.Response:
        await request.read()
        size = int(request.query.get("size", "100000"))
        return web.Response(status=200, body=b"x" * size, content_type="text/plain")

    async def hang(self, request: web.Request) -> web.Response:
        # Deliberately hangs: the sender's total timeout must cut it off.
        await asyncio.sleep(30)
        return web.Response(status=204)

    async def slow_body(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"accepted ")
        # Deliberately stalls mid-body after the status line has been sent.
        await asyncio.sleep(30)
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/hook-new-secret", self.hook_new_secret)
        app.router.add_post("/status/{code}", self.status)
        app.router.add_post("/redirect", self.redirect)
        app.router.add_post("/big", self.big)
        app.router.add_post("/hang", self.hang)
        app.router.add_post("/slow-body", self.slow_body)
        return app


class StaticResolver(AbstractResolver):
    """Answers from a fixed table, so DNS-based tests never touch real DNS."""

    def __init__(self, table: dict[str, str | list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"no such host {host}")
        found = self.table[host]
        ips = [found] if isinstance(found, str) else found
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for ip in ips
        ]

    async def close(self) -> None:
        return None


@dataclass
class TestPKI:
    """A throwaway CA and a server certificate for one name, so HTTPS delivery is tested for real."""

    server_ctx: ssl.SSLContext
    client_ctx: ssl.SSLContext


def make_pki(tmp_dir: Path, hostname: str) -> TestPKI:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "上街区政务服务中心 测试根证书")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_dir / "server.pem", tmp_dir / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return TestPKI(server_ctx, client_ctx)
