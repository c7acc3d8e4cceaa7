"""Which URLs webhooks may be sent to: http(s) only, and (unless allowed) never a non-public address.

The check runs when an endpoint is saved and again at every delivery, because DNS can change in
between. At delivery it also runs on the socket's actual peer after connecting, so a host that
resolves differently a millisecond later (DNS rebinding) is still refused.
"""

import ipaddress
import socket
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# First match names the kind; `is_private` also covers loopback, link-local and reserved, so order matters.
_ADDRESS_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)

# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix (RFC 6052) and the
# deprecated IPv4-compatible form. 6to4, Teredo and IPv4-mapped have ipaddress properties of their own.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Local-use NAT64 (RFC 8215) translates into a network's own IPv4 space, at an offset only that network knows.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


class InvalidTargetError(ValueError):
    """The URL can never be a webhook target (bad syntax, or a refused address)."""


class TargetRefusedError(InvalidTargetError):
    """The host resolves to an address webhooks may not reach."""


class UnresolvableTargetError(ValueError):
    """The host does not resolve right now (may be transient: deliveries retry)."""


def private_targets_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through (IPv4-mapped, 6to4, Teredo client, NAT64, IPv4-compatible)."""
    if not isinstance(address, ipaddress.IPv6Address) or address.is_loopback or address.is_unspecified:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _own_kind(address: IPAddress) -> str | None:
    for attribute, kind in _ADDRESS_KINDS:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "non-public"


def address_kind(address: IPAddress) -> str | None:
    """'loopback', 'private', … for an address webhooks must not reach, itself or through the IPv4 address it
    embeds; None for a public one."""
    embedded = embedded_ipv4(address)
    if embedded is not None and (kind := _own_kind(embedded)):
        return kind
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL_USE:
            return "local-use NAT64"
        if address.ipv4_mapped or address in _NAT64:
            return None  # a plain translation of the public IPv4 address it embeds
    return _own_kind(address)


def parse_url(url: str) -> SplitResult:
    """Syntax only: an absolute http(s) URL with a host and a valid port."""
    if not url or any(ch.isspace() for ch in url):
        raise InvalidTargetError("Enter an absolute http:// or https:// URL without spaces.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidTargetError("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise InvalidTargetError("The URL has no host.")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidTargetError("The URL's port is not a number between 0 and 65535.") from exc
    return parts


def refuse_if_not_public(host: str, address: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    kind = address_kind(ip)
    if kind is not None and not private_targets_allowed():
        shown = host if host == str(ip) else f"{host} resolves to {ip}, which"
        embedded = embedded_ipv4(ip)
        what = f"embeds {embedded}, a {kind}" if embedded is not None and _own_kind(embedded) else f"is a {kind}"
        raise TargetRefusedError(
            f"{shown} {what} address; webhooks may only be sent to public addresses "
            "(an operator can allow private targets with WEBHOOKS_ALLOW_PRIVATE_TARGETS=1)."
        )


def check_url(url: str) -> None:
    """Raise InvalidTargetError/TargetRefusedError/UnresolvableTargetError unless `url` may receive webhooks now."""
    parts = parse_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableTargetError(f"The host {host} could not be resolved.") from exc
    if private_targets_allowed():
        return
    for info in infos:
        refuse_if_not_public(host, str(info[4][0]))


class _PeerCheckMixin:
    """Refuses the connection when the address actually connected to is not public."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            refuse_if_not_public(self.host, sock.getpeername()[0])
        except TargetRefusedError:
            sock.close()
            raise
        return sock


class _GuardedHTTPConnection(_PeerCheckMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_PeerCheckMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections check their peer address (see the module docstring)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }
