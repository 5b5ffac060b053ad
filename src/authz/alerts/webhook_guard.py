"""Where a tenant's webhook may point: the guard between an org admin's URL and the pod's network.

An org admin chooses the alert webhook URL, so it is hostile input that authz itself fetches
(server-side request forgery). Left unchecked it reaches what only the pod can reach: Envoy's
admin port (`/quitquitquit` stops every org's traffic), authz's own admin API, Redis, the
cloud metadata service. The rule, checked when the URL is saved and again on every delivery:

- `https` only, to a public address; `http` and non-public addresses only for hosts the
  operator lists in `alert_webhook_allowed_hosts` (its own receivers);
- an address is judged in every spelling a resolver accepts (decimal `2130706433`, hex
  `0x7f000001`, short `127.1`, trailing dots, IPv4-mapped / 6to4 / NAT64 IPv6);
- a name is resolved by us, every address it resolves to must be public, and the connection
  goes to an address we checked (the resolver below is the only one the delivery client uses),
  so DNS rebinding between check and connect changes nothing; redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import urllib.parse
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*"
)
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")  # what inet_aton might read as an IPv4 address
_URL_CHARS = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_MAX_URL = 2048


# Cloud instance-metadata host names (GCP, AWS, Azure, Alibaba, Oracle, Tencent, OpenStack) and
# the suffixes reserved for private networks (RFC 6762, ICANN's .internal).
_METADATA_HOSTS = frozenset(
    {
        "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
        "metadata.azure.internal", "metadata.tencentyun.com", "metadata.oraclecloud.com",
    }
)  # fmt: skip
_PRIVATE_SUFFIXES = (".internal", ".local", ".cluster.local", ".svc")


class WebhookRefused(ValueError):
    """The URL may not be used as a webhook; the message says why and what to do."""


class AddressRefused(OSError):
    """Raised inside the HTTP client's connect when a name resolves to a refused address."""


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is a public unicast one (not loopback, private, link-local,
    unique-local, unspecified, shared, reserved, multicast, or an IPv6 form of those)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if ip.teredo:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any spelling a resolver accepts; None for a name."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host.lower()):
        try:  # the legacy forms getaddrinfo still accepts: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # lower-case, without brackets or trailing dots
    port: int
    operator_allowed: bool


@dataclass(frozen=True, slots=True)
class WebhookGuard:
    """`allowed_hosts`: the operator's own receivers, as `host` or `host:port` (lower-case)."""

    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_setting(cls, value: str) -> WebhookGuard:
        return cls(frozenset(h.strip().lower().rstrip(".") for h in value.split(",") if h.strip()))

    def operator_allowed(self, host: str, port: int) -> bool:
        """Whether the operator listed this host (with or without the port) as its own receiver."""
        return (
            host in self.allowed_hosts
            or f"{host}:{port}" in self.allowed_hosts
            or (":" in host and f"[{host}]:{port}" in self.allowed_hosts)
        )

    def target(self, url: str) -> Target:
        """Check what can be checked without the network; raises WebhookRefused."""
        if len(url) > _MAX_URL or not _URL_CHARS.fullmatch(url) or "\\" in url:
            raise WebhookRefused(
                f"webhook_url must be a plain URL of at most {_MAX_URL} printable ASCII "
                "characters (no spaces or backslashes)"
            )
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise WebhookRefused(f"webhook_url is not a valid URL: {exc}") from None
        if parts.username is not None or parts.password is not None:
            raise WebhookRefused("webhook_url must not carry credentials before the host (user:password@)")
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme not in ("https", "http") or not host:
            raise WebhookRefused("webhook_url must be an https:// URL with a host")
        port = port or (443 if parts.scheme == "https" else 80)
        allowed = self.operator_allowed(host, port)
        if parts.scheme == "http" and not allowed:
            raise WebhookRefused(
                "webhook_url must use https:// (plain http:// only for hosts the operator lists "
                "in alert_webhook_allowed_hosts)"
            )
        if allowed:
            return Target(parts.scheme, host, port, True)
        address = literal_address(host)
        if address is not None:
            if not is_public(address):
                raise WebhookRefused(
                    f"webhook_url points at {address}, a loopback, private, link-local or otherwise "
                    "non-public address; use a public receiver (or ask the operator to allow "
                    "the host in alert_webhook_allowed_hosts)"
                )
        elif not _HOST_NAME.fullmatch(host):
            raise WebhookRefused(
                f"webhook_url host {host!r} is not a valid DNS name (use the punycode form for international names)"
            )
        elif host == "localhost" or host.endswith(".localhost"):
            raise WebhookRefused("webhook_url must not point at localhost; use a public receiver")
        elif host.lower() in _METADATA_HOSTS or host.lower().endswith(_PRIVATE_SUFFIXES):
            # Resolved inside a cloud, these name the instance metadata service or private
            # networks: refused by name, whatever they resolve to where authz saves the URL.
            raise WebhookRefused(
                f"webhook_url host {host!r} names a cloud metadata service or a private network; use a public receiver"
            )
        return Target(parts.scheme, host, port, False)

    async def check_url(self, url: str, timeout_s: float = 2.0) -> Target:
        """The save-time check: `target` plus, for a name, its current addresses. A name that does
        not resolve right now is accepted (every delivery resolves and checks again)."""
        target = self.target(url)
        if target.operator_allowed or literal_address(target.host) is not None:
            return target
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout_s
            )
        except (TimeoutError, OSError):
            return target
        _refuse_private(target.host, [str(info[4][0]) for info in infos])
        return target

    def resolver(self) -> GuardedResolver:
        return GuardedResolver(self)


def _refuse_private(host: str, addresses: list[str]) -> None:
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        if not is_public(ip):
            raise WebhookRefused(
                f"webhook host {host!r} resolves to {ip}, a non-public address; "
                "use a public receiver (or ask the operator to allow the host)"
            )


class GuardedResolver(AbstractResolver):
    """The delivery client's only resolver: every address of a name must be public (unless the
    operator allowed the host), and only checked addresses are handed to the connector."""

    def __init__(self, guard: WebhookGuard):
        self._guard = guard
        self._inner = DefaultResolver()

    async def resolve(
        self,
        host: str,
        port: int = 0,
        family: socket.AddressFamily = socket.AF_INET,
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        name = host.lower().rstrip(".")
        if not self._guard.operator_allowed(name, port):
            try:
                _refuse_private(name, [r["host"] for r in results])
            except WebhookRefused as exc:
                raise AddressRefused(str(exc)) from None
        return results

    async def close(self) -> None:
        await self._inner.close()
