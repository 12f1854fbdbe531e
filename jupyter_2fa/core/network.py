"""Where a request comes from: the client address behind trusted proxies, and trusted-network membership."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    """CIDR strings ("10.0.0.0/8", "2001:db8::/32", or a single address) as networks; ValueError if bad.

    >>> parse_networks(["10.1.0.0/16", "127.0.0.1"])
    [IPv4Network('10.1.0.0/16'), IPv4Network('127.0.0.1/32')]
    """
    return [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs]


def in_networks(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether ``address`` (an IP address as text; IPv4-mapped IPv6 counts as IPv4) lies in ``networks``.

    Anything that is not an IP address is in no network.

    >>> in_networks("::ffff:10.1.2.3", parse_networks(["10.1.0.0/16"]))
    True
    >>> in_networks("not-an-ip", parse_networks(["0.0.0.0/0"]))
    False
    """
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    real_ip: str | None,
    trusted_proxies: Sequence[Network],
) -> str | None:
    """The address of the client, believing forwarding headers only from ``trusted_proxies``.

    When the connection comes from a trusted proxy, ``X-Forwarded-For`` is read right to left and the first
    address that is not itself a trusted proxy is the client (everything left of it could be forged by the
    client). ``X-Real-Ip`` is used only when there is no ``X-Forwarded-For``. From any other peer the headers
    are ignored.

    >>> proxies = parse_networks(["127.0.0.1"])
    >>> client_address("127.0.0.1", "6.6.6.6, 10.1.2.3", None, proxies)
    '10.1.2.3'
    >>> client_address("192.0.2.9", "10.1.2.3", "10.1.2.3", proxies)
    '192.0.2.9'
    >>> client_address("127.0.0.1", "10.1.2.3", None, [])  # loopback is no proxy unless listed
    '127.0.0.1'
    """
    if not in_networks(peer, trusted_proxies):
        return peer
    if forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not in_networks(hop, trusted_proxies):
                return hop if _is_ip(hop) else None
        return hops[0] if hops else peer
    if real_ip and _is_ip(real_ip.strip()):
        return real_ip.strip()
    return peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def source_of(address: str | None) -> str | None:
    """The unit a guessing source is counted in: one IPv4 address, or one IPv6 /64 (what a single host or
    LAN is usually given, so a guesser cannot step through its own addresses). None when there is no address.

    >>> source_of("2001:db8:1:2:aaaa::1"), source_of("::ffff:10.1.2.3"), source_of(None)
    ('2001:db8:1:2::/64', '10.1.2.3', None)
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address[:64]  # a unix socket or other non-IP peer: count it under its own name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
