"""Which addresses a guest may connect to, bind, send to and resolve.

By default a guest reaches loopback only (127.0.0.0/8 and ::1, any port).
`--allow HOST:PORT` adds more; HOST is an IP address, a CIDR network, a host
name (resolved once, when the policy is built) or `*`, and PORT is a number
or `*`. IPv6 hosts go in brackets: `[::1]:8080`, `[fd00::/8]:*`.

A denied connect, bind or send_to returns ACCES to the guest (Rust sees
`ErrorKind::PermissionDenied`). `sock_getaddrinfo` drops the addresses the
guest could not use on any port and fails with AINONAME when none is left,
so a denied name is indistinguishable from one that does not exist.
Binding to the unspecified address (0.0.0.0, ::) exposes the guest on every
interface and therefore needs an explicit rule such as `0.0.0.0:8080`.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


class PolicyError(ValueError):
    """An `--allow` value that cannot be understood."""


@dataclass(frozen=True)
class AllowRule:
    """One allowed destination: a network (None = any host) and a port (None = any)."""

    network: IPNetwork | None
    port: int | None
    source: str  # what the user wrote, for messages

    def allows_host(self, ip: IPAddress) -> bool:
        return self.network is None or (ip.version == self.network.version and ip in self.network)

    def allows(self, ip: IPAddress, port: int) -> bool:
        return self.allows_host(ip) and (self.port is None or self.port == port)


@dataclass(frozen=True)
class PolicyDecision:
    """A denied operation, as reported to the policy log."""

    action: str  # connect | bind | send_to | resolve
    host: str
    port: int | None

    def message(self) -> str:
        where = f"{_bracketed(self.host)}:{self.port}" if self.port is not None else self.host
        if self.action == "resolve":
            return f"denied resolving {where} (no allowed address; allow one with --allow HOST:PORT)"
        suggestion = f"{_bracketed(self.host)}:{self.port}" if self.port is not None else f"{self.host}:*"
        return f"denied {self.action} to {where} (allow it with --allow {suggestion})"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class NetworkPolicy:
    rules: tuple[AllowRule, ...]

    def allows(self, ip: IPAddress, port: int) -> bool:
        ip = _unmapped(ip)
        return any(rule.allows(ip, port) for rule in self.rules)

    def allows_host(self, ip: IPAddress) -> bool:
        """Whether some port on `ip` is allowed: the test for name resolution."""
        ip = _unmapped(ip)
        return any(rule.allows_host(ip) for rule in self.rules)


def _unmapped(ip: IPAddress) -> IPAddress:
    """::ffff:a.b.c.d is the IPv4 address a.b.c.d for policy purposes."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def default_rules() -> tuple[AllowRule, ...]:
    return tuple(AllowRule(network, None, "loopback") for network in LOOPBACK_NETWORKS)


def build_policy(allow: list[str] | tuple[str, ...] = ()) -> NetworkPolicy:
    """The default loopback rules plus one or more rules per `--allow` value."""
    rules = list(default_rules())
    for text in allow:
        rules.extend(parse_allow(text))
    return NetworkPolicy(tuple(rules))


def parse_allow(text: str) -> tuple[AllowRule, ...]:
    host, port_text = _split_host_port(text.strip())
    port = _parse_port(port_text, text)
    if host == "*":
        return (AllowRule(None, port, text),)
    network = _parse_network(host)
    if network is not None:
        return (AllowRule(network, port, text),)
    return tuple(AllowRule(ipaddress.ip_network(ip), port, text) for ip in _resolve_name(host, text))


def _split_host_port(text: str) -> tuple[str, str]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1 :].startswith(":"):
            raise PolicyError(f"--allow {text!r}: expected [IPV6]:PORT")
        return text[1:end], text[end + 2 :]
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise PolicyError(f"--allow {text!r}: expected HOST:PORT or HOST:*")
    if ":" in host:
        raise PolicyError(f"--allow {text!r}: put IPv6 addresses in brackets, e.g. [::1]:8080")
    return host, port


def _parse_port(port_text: str, text: str) -> int | None:
    if port_text == "*":
        return None
    if port_text.isdigit() and 0 <= int(port_text) <= 65535:
        return int(port_text)
    raise PolicyError(f"--allow {text!r}: the port must be a number from 0 to 65535 or *")


def _parse_network(host: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(host, strict=False)
    except ValueError:
        return None


def _resolve_name(host: str, text: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as err:
        raise PolicyError(f"--allow {text!r}: cannot resolve {host!r} ({err.strerror})") from None
    return sorted({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}, key=str)
