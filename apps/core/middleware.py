"""Django's site middleware, skipped for the signed /v1 API.

Sessions, authentication, messages and slash-appending serve the admin and the pages; /v1 requests
authenticate by signature and need none of them. Skipping them there measured about +10% requests/s
on the token endpoint (bench/token_bench).
"""

import ipaddress
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import DisallowedHost, ImproperlyConfigured, SuspiciousOperation
from django.http import HttpRequest, HttpResponseBase
from django.middleware.common import CommonMiddleware
from django.utils.deprecation import MiddlewareMixin

from .problems import API_PREFIX, PayloadTooLarge, Problem, bad_request, problem_response

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutsideApiMixin:
    get_response: Callable[[HttpRequest], HttpResponseBase]

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SiteSessionMiddleware(OutsideApiMixin, SessionMiddleware):
    pass


class SiteCommonMiddleware(OutsideApiMixin, CommonMiddleware):
    pass


class SiteAuthenticationMiddleware(OutsideApiMixin, AuthenticationMiddleware):
    pass


class SiteMessageMiddleware(OutsideApiMixin, MessageMiddleware):
    pass


class RejectNulMiddleware:
    """A NUL in the path (`/v1/recordings/%00`) is a 400 before any view runs.

    No PostgreSQL text column and no file name can hold one, so every view and admin page that looked the id
    up failed with a 500 and a logged traceback. One check here instead of one per view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if "\x00" in request.path_info:
            return bad_request(request, SuspiciousOperation("NUL in the request path"))
        return self.get_response(request)


@cache
def _trusted_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES must be comma-separated addresses or CIDRs: {exc}") from exc


def _is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(tuple(settings.TRUSTED_PROXIES)))


class TrustedProxyMiddleware:
    """X-Forwarded-Proto and X-Forwarded-For count only when the peer is a proxy in TRUSTED_PROXIES.

    From any other peer both are dropped, so a client cannot claim HTTPS (SECURE_PROXY_SSL_HEADER) or another
    address. Behind a trusted proxy REMOTE_ADDR becomes the client it saw: the right-most X-Forwarded-For entry
    that is not itself a trusted proxy, so per-address limits (sign-in lockout) count clients, not the proxy.
    """

    HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        if not _is_trusted_proxy(meta.get("REMOTE_ADDR", "")):
            for name in self.HEADERS:
                meta.pop(name, None)
        elif forwarded := meta.get("HTTP_X_FORWARDED_FOR"):
            for hop in reversed([hop.strip() for hop in forwarded.split(",")]):
                try:
                    ipaddress.ip_address(hop)
                except ValueError:
                    break
                meta["REMOTE_ADDR"] = hop
                if not _is_trusted_proxy(hop):
                    break
        return self.get_response(request)


def websocket_origins(request: HttpRequest) -> list[str]:
    """Where the dashboard's pages open sockets: this host, and DASHBOARD_WEBSOCKET_URL's origin when set."""
    try:
        origins = [f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}"]
    except DisallowedHost:  # answered with a 400 already; 'self' is all that page gets
        origins = []
    configured = urlsplit(settings.DASHBOARD_WEBSOCKET_URL)
    if configured.scheme and configured.netloc:
        origins.append(f"{configured.scheme}://{configured.netloc}")
    return origins


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's CONTENT_SECURITY_POLICY on HTML responses (the rest are never rendered as pages), with
    the dashboard's WebSocket origins added to connect-src."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            parts.update = {**(parts.update or {}), "connect-src": websocket_origins(request)}
        return parts


def declared_length(request: HttpRequest) -> int:
    """The body size the client announced (Content-Length), or a 400 problem when it is not a number."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError as exc:
        raise Problem(
            "Content-Length must be a number of bytes.", kind="malformed-request", title="Malformed request", status=400
        ) from exc


class ApiBodyLimitMiddleware(MiddlewareMixin):
    """Refuses a /v1 body larger than its endpoint takes, judged on Content-Length before anything reads it.

    API_MAX_BODY_BYTES everywhere; a view that takes more (the upload) says so with a `max_body_bytes()`
    classmethod. Signed requests are hashed before the key is proven, so this bounds what a key id alone costs.
    """

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., HttpResponseBase], view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        if not request.path_info.startswith(API_PREFIX):
            return None
        custom = getattr(getattr(view_func, "cls", None), "max_body_bytes", None)
        limit = custom() if custom else settings.API_MAX_BODY_BYTES
        try:
            length = declared_length(request)
        except Problem as problem:
            return problem_response(problem)
        if length > limit:
            return problem_response(
                PayloadTooLarge(f"This endpoint takes a body of at most {limit} bytes; this one has {length}.")
            )
        return None
