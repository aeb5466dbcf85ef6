"""Keep webhook deliveries away from our own network.

Webhook URLs come from clients, so a URL could point the worker at Redis, the database, a cloud metadata
service or the hall's intranet. The authoritative check runs when a socket is about to connect, on the
address actually being connected to: a check on the URL or on a DNS answer alone is defeated by IP literals
(aiohttp does not resolve them), DNS rebinding (the name resolves differently a second later) and the many
spellings of one address (IPv4-mapped IPv6, 6to4, NAT64 ...).
"""

from __future__ import annotations

import enum
import errno
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from yarl import URL

__all__ = [
    "METADATA_ADDRESSES",
    "AddressPolicy",
    "BlockedAddress",
    "Category",
    "check_url",
    "make_connector",
    "make_socket_factory",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Category(enum.StrEnum):
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    SHARED = "shared address space (CGNAT)"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved or special-purpose"
    METADATA = "cloud metadata service"
    NOT_IP = "not an IP address"


class BlockedAddress(OSError):
    """The policy refused an address.

    An ``OSError`` on purpose: raised from the socket factory it travels through aiohappyeyeballs and
    aiohttp exactly like a refused connection, so the request fails cleanly instead of crashing the worker.
    """

    def __init__(self, address: str, category: Category) -> None:
        super().__init__(errno.EACCES, f"blocked by webhook address policy: {address} is {category.value}")
        self.address = address
        self.category = category


# Always refused, even when private addresses are allowed: these hand out cloud credentials.
# 169.254.169.254 (AWS, GCP, Azure, Tencent, Huawei), fd00:ec2::254 (AWS IPv6),
# 100.100.100.200 (Alibaba Cloud), 169.254.170.2 (AWS ECS task credentials).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Own tables rather than ipaddress.is_private/is_global: their contents changed across Python patch
# releases, and a security boundary should not move with the interpreter. is_global is still consulted
# last as a safety net for registries we did not list.
_RULES: tuple[tuple[Category, tuple[IPNetwork, ...]], ...] = (
    (Category.UNSPECIFIED, _nets("0.0.0.0/8", "::/128")),
    (Category.LOOPBACK, _nets("127.0.0.0/8", "::1/128")),
    (Category.PRIVATE, _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    (Category.LINK_LOCAL, _nets("169.254.0.0/16", "fe80::/10")),
    (Category.SHARED, _nets("100.64.0.0/10")),
    (Category.MULTICAST, _nets("224.0.0.0/4", "ff00::/8")),
    (
        Category.RESERVED,
        _nets(
            "192.0.0.0/24",  # IETF protocol assignments
            "192.0.2.0/24",  # documentation
            "192.88.99.0/24",  # 6to4 relay anycast
            "198.18.0.0/15",  # benchmarking
            "198.51.100.0/24",  # documentation
            "203.0.113.0/24",  # documentation
            "240.0.0.0/4",  # reserved, includes broadcast
            "64:ff9b:1::/48",  # local-use NAT64: translates into the operator's own network
            "100::/64",  # discard-only
            "2001::/23",  # IETF protocol assignments, includes Teredo tunnels
            "2001:db8::/32",  # documentation
            "3fff::/20",  # documentation
            "fec0::/10",  # deprecated site-local
        ),
    ),
)

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form leads to, if any: such forms reach the IPv4 host through the stack
    (mapped), a translator (NAT64) or a tunnel (6to4), so they must be judged as that IPv4 address."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64_WELL_KNOWN or (addr in _IPV4_COMPATIBLE and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _parse(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        addr: IPAddress = ip
    else:
        text = ip.strip().strip("[]")
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            raise BlockedAddress(text, Category.NOT_IP) from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        # A zone only picks the interface; the address decides what is reached.
        addr = ipaddress.IPv6Address(int(addr))
    return addr


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses webhook deliveries may connect to.

    ``allow_loopback`` is for tests and single-machine setups, ``allow_private`` for a hall whose approval
    systems live on its intranet, ``allow_cidrs`` for anything narrower (a CGNAT range, one metadata-like
    address of a private cloud); an allow-listed CIDR wins over every rule, metadata included.
    """

    allow_loopback: bool = False
    allow_private: bool = False
    allow_cidrs: tuple[IPNetwork, ...] = field(default=())

    def __init__(
        self,
        allow_loopback: bool = False,
        allow_private: bool = False,
        allow_cidrs: Iterable[str | IPNetwork] = (),
    ) -> None:
        object.__setattr__(self, "allow_loopback", allow_loopback)
        object.__setattr__(self, "allow_private", allow_private)
        object.__setattr__(
            self,
            "allow_cidrs",
            tuple(ipaddress.ip_network(c, strict=False) if isinstance(c, str) else c for c in allow_cidrs),
        )

    def _allow_listed(self, addr: IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self.allow_cidrs)

    def category(self, ip: str | IPAddress) -> Category | None:
        """Why ``ip`` is blocked, or ``None`` if it may be connected to."""
        try:
            addr = _parse(ip)
        except BlockedAddress as exc:
            return exc.category
        inner = _embedded_ipv4(addr) if isinstance(addr, ipaddress.IPv6Address) else None
        if self._allow_listed(addr) or (inner is not None and self._allow_listed(inner)):
            return None
        if inner is not None:
            return self.category(inner)
        if addr in METADATA_ADDRESSES:
            return Category.METADATA
        for category, nets in _RULES:
            if any(addr.version == net.version and addr in net for net in nets):
                if category is Category.LOOPBACK and self.allow_loopback:
                    return None
                if category is Category.PRIVATE and self.allow_private:
                    return None
                return category
        if not addr.is_global:
            return Category.RESERVED
        return None

    def check(self, ip: str | IPAddress) -> None:
        """Raise ``BlockedAddress`` unless ``ip`` may be connected to."""
        category = self.category(ip)
        if category is not None:
            raise BlockedAddress(str(ip), category)


_LOCALHOST_NAMES = ("localhost", "localhost.")


def check_url(url: str | URL, policy: AddressPolicy) -> URL:
    """Early, readable refusal for URLs whose host alone shows they are off limits.

    Returns the parsed URL. Raises ``ValueError`` for URLs that are not absolute http(s) URLs and
    ``BlockedAddress`` for IP-literal or ``localhost`` hosts the policy refuses. Names that merely resolve
    to a blocked address are caught at connect time by ``make_connector``; this is not the security check.
    """
    parsed = url if isinstance(url, URL) else URL(url)
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"webhook URL must be http or https, not {parsed.scheme or 'relative'!r}")
    host = parsed.raw_host
    if not host:
        raise ValueError("webhook URL has no host")
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        lowered = host.lower()
        # RFC 6761: *.localhost always means this machine, whatever a resolver says.
        if (lowered in _LOCALHOST_NAMES or lowered.rstrip(".").endswith(".localhost")) and not (policy.allow_loopback):
            raise BlockedAddress(host, Category.LOOPBACK) from None
        return parsed
    policy.check(addr)
    return parsed


def make_socket_factory(policy: AddressPolicy) -> SocketFactoryType:
    """A socket factory for aiohappyeyeballs that refuses blocked peers before a socket exists."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _canonname, sockaddr = addr_info
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise BlockedAddress(repr(sockaddr), Category.NOT_IP)
        policy.check(str(sockaddr[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def make_connector(policy: AddressPolicy, **kw: Any) -> aiohttp.TCPConnector:
    """An ``aiohttp.TCPConnector`` that only connects to addresses ``policy`` allows.

    Extra keyword arguments go to ``TCPConnector`` (``limit``, ``resolver``, ``ttl_dns_cache`` ...).
    """
    if "socket_factory" in kw:
        raise TypeError("make_connector installs its own socket_factory")
    return aiohttp.TCPConnector(socket_factory=make_socket_factory(policy), **kw)
