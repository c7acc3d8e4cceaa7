"""Dependency checks for GET /v1/health. Each check reports; none raises."""

import logging
from collections.abc import Callable, Mapping

import requests
from django.db import connection

from .redis import get_redis

logger = logging.getLogger(__name__)

OK = "ok"
NOT_CONFIGURED = "not_configured"
UNREACHABLE = "unreachable"
HTTP_TIMEOUT_SECONDS = 1.5


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return OK
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        logger.warning("Health: database check failed: %s", exc.__class__.__name__)
        return UNREACHABLE


def check_redis() -> str:
    client = get_redis()
    if client is None:
        return NOT_CONFIGURED
    try:
        client.ping()
        return OK
    except Exception as exc:  # noqa: BLE001
        logger.warning("Health: Redis check failed: %s", exc.__class__.__name__)
        return UNREACHABLE


def check_http(base_url: str, path: str) -> str:
    """A service answering over HTTP below 500 is reachable; an app's check for its upstream."""
    if not base_url:
        return NOT_CONFIGURED
    try:
        response = requests.get(base_url.rstrip("/") + path, timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException:
        return UNREACHABLE
    return OK if response.status_code < 500 else UNREACHABLE


# Filled by each app's AppConfig.ready() (register_check / register_capability), so core imports no app.
CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
}
CAPABILITIES: dict[str, Callable[[Mapping[str, str]], bool]] = {}
# A deployment cannot serve /v1 without these; the others only limit features.
ESSENTIAL = ("database", "redis")


def register_check(name: str, check: Callable[[], str]) -> None:
    """Report `check()` (OK, NOT_CONFIGURED or UNREACHABLE; it must not raise) as checks[name]."""
    CHECKS[name] = check


def register_capability(name: str, available: Callable[[Mapping[str, str]], bool]) -> None:
    """Report `available(checks)` as capabilities[name]; it reads the results of the registered checks."""
    CAPABILITIES[name] = available


def report() -> tuple[dict, bool]:
    checks = {name: check() for name, check in CHECKS.items()}
    healthy = all(checks[name] in (OK, NOT_CONFIGURED) for name in ESSENTIAL)
    degraded = any(state == UNREACHABLE for state in checks.values())
    capabilities = {name: available(checks) for name, available in CAPABILITIES.items()}
    status = "error" if not healthy else ("degraded" if degraded else "ok")
    return {"status": status, "checks": checks, "capabilities": capabilities}, healthy
