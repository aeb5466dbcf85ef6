from __future__ import annotations

import ipaddress

import aiohttp
import pytest
from webhook_fixtures import MSG_ID, Receiver, StaticResolver, payload_bytes

from webhooks.signing import headers
from webhooks.ssrf import AddressPolicy, BlockedAddress, Category, check_url, make_connector

BLOCKED = [
    ("10.0.0.1", Category.PRIVATE),
    ("172.16.0.1", Category.PRIVATE),
    ("172.31.255.254", Category.PRIVATE),
    ("192.168.1.1", Category.PRIVATE),
    ("fd12:3456:789a::1", Category.PRIVATE),
    ("100.64.0.1", Category.SHARED),
    ("127.0.0.1", Category.LOOPBACK),
    ("127.8.9.10", Category.LOOPBACK),
    ("::1", Category.LOOPBACK),
    ("169.254.1.1", Category.LINK_LOCAL),
    ("fe80::1", Category.LINK_LOCAL),
    ("fe80::1%eth0", Category.LINK_LOCAL),
    ("169.254.169.254", Category.METADATA),
    ("fd00:ec2::254", Category.METADATA),
    ("100.100.100.200", Category.METADATA),
    ("224.0.0.251", Category.MULTICAST),
    ("ff02::1", Category.MULTICAST),
    ("0.0.0.0", Category.UNSPECIFIED),
    ("::", Category.UNSPECIFIED),
    ("240.0.0.1", Category.RESERVED),
    ("255.255.255.255", Category.RESERVED),
    ("198.18.0.1", Category.RESERVED),
    ("2001:db8::1", Category.RESERVED),
    # IPv6 spellings of IPv4 addresses are judged as the IPv4 address they reach.
    ("::ffff:127.0.0.1", Category.LOOPBACK),
    ("::ffff:10.1.2.3", Category.PRIVATE),
    ("::ffff:169.254.169.254", Category.METADATA),
    ("::127.0.0.1", Category.LOOPBACK),  # IPv4-compatible
    ("2002:a00:1::1", Category.PRIVATE),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::", Category.LOOPBACK),  # 6to4 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", Category.METADATA),  # NAT64 of 169.254.169.254
    ("64:ff9b::c0a8:101", Category.PRIVATE),  # NAT64 of 192.168.1.1
    ("64:ff9b:1::a00:1", Category.RESERVED),  # local-use NAT64
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Category.RESERVED),  # Teredo
    ("not-an-ip", Category.NOT_IP),
]

PUBLIC = ["223.5.5.5", "114.114.114.114", "1.1.1.1", "2400:3200::1", "240e:1::1", "64:ff9b::df05:505"]


@pytest.mark.parametrize(("ip", "category"), BLOCKED)
def test_default_policy_blocks(ip: str, category: Category) -> None:
    policy = AddressPolicy()
    with pytest.raises(BlockedAddress) as info:
        policy.check(ip)
    assert info.value.category is category
    assert isinstance(info.value, OSError)
    assert "blocked by webhook address policy" in str(info.value)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass(ip: str) -> None:
    AddressPolicy().check(ip)
    AddressPolicy().check(ipaddress.ip_address(ip))


def test_allow_loopback_allows_only_loopback() -> None:
    policy = AddressPolicy(allow_loopback=True)
    for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        policy.check(ip)
    for ip in ("10.0.0.1", "169.254.169.254", "0.0.0.0"):
        with pytest.raises(BlockedAddress):
            policy.check(ip)


def test_allow_private_never_opens_metadata_or_cgnat() -> None:
    policy = AddressPolicy(allow_private=True)
    for ip in ("10.0.0.1", "172.16.0.1", "192.168.1.1", "fd12::1"):
        policy.check(ip)
    for ip in ("fd00:ec2::254", "169.254.169.254", "100.100.100.200", "100.64.0.1", "127.0.0.1"):
        with pytest.raises(BlockedAddress):
            policy.check(ip)


def test_allow_cidrs_wins_over_every_rule() -> None:
    policy = AddressPolicy(allow_cidrs=["100.64.0.0/10", "10.20.0.0/16", ipaddress.ip_network("fd00:ec2::/64")])
    for ip in ("100.100.100.200", "10.20.3.4", "::ffff:10.20.3.4", "fd00:ec2::254"):
        policy.check(ip)
    with pytest.raises(BlockedAddress):
        policy.check("10.21.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1:8080/hook",
        "http://100.64.0.1/hook",
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://localhost:8000/hook",
        "https://api.localhost/hook",
    ],
)
def test_check_url_refuses_literal_hosts_early(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url(url, AddressPolicy())


@pytest.mark.parametrize("url", ["ftp://hook.sj-spxt.example/x", "/relative", "http:///nohost", "file:///etc/passwd"])
def test_check_url_refuses_non_http_urls(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url, AddressPolicy())


def test_check_url_passes_names_to_the_connect_time_check() -> None:
    assert check_url("https://hook.sj-spxt.example/v1/events", AddressPolicy()).host == "hook.sj-spxt.example"


def test_make_connector_refuses_its_own_factory_override() -> None:
    with pytest.raises(TypeError):
        make_connector(AddressPolicy(), socket_factory=lambda ai: None)


async def _post_plain(connector: aiohttp.TCPConnector, url: str, secret: str) -> int:
    body = payload_bytes()
    import time

    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url, data=body, headers=headers(MSG_ID, int(time.time()), body, [secret])) as r:
            return r.status


async def test_connector_blocks_ip_literal_at_connect_time(receiver: Receiver) -> None:
    # A plain session has no URL pre-check: only the socket factory stands between it and 127.0.0.1.
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await _post_plain(make_connector(AddressPolicy()), receiver.url("/hook"), receiver.secret)
    assert isinstance(info.value.os_error, BlockedAddress)
    assert receiver.deliveries == []


async def test_connector_blocks_localhost_after_resolution(receiver: Receiver) -> None:
    url = receiver.url("/hook").replace("127.0.0.1", "localhost")
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await _post_plain(make_connector(AddressPolicy()), url, receiver.secret)
    assert "blocked by webhook address policy" in str(info.value)
    assert receiver.deliveries == []


async def test_connector_blocks_name_resolving_to_private_address() -> None:
    resolver = StaticResolver({"hook.sj-spxt.example": "10.1.2.3"})
    connector = make_connector(AddressPolicy(), resolver=resolver)
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await _post_plain(connector, "http://hook.sj-spxt.example/v1/webhooks", "whsec_" + "A" * 44)
    assert isinstance(info.value.os_error, BlockedAddress)
    assert info.value.os_error.address == "10.1.2.3"
    assert resolver.asked == ["hook.sj-spxt.example"]


async def test_connector_lets_allowed_addresses_through(receiver: Receiver) -> None:
    resolver = StaticResolver({"approval.sj-spxt.example": "127.0.0.1"})
    connector = make_connector(AddressPolicy(allow_loopback=True), resolver=resolver)
    url = receiver.url("/hook").replace("127.0.0.1", "approval.sj-spxt.example")
    assert await _post_plain(connector, url, receiver.secret) == 204
    assert [d.verified for d in receiver.deliveries] == [True]
