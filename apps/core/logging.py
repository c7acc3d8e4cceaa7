"""Log plumbing: one access-log line per request, and secrets scrubbed from every record.

Request ids come from django-guid (its middleware reads or makes `X-Request-ID`, returns it on the
response and keeps it in a context variable; its `CorrelationId` filter copies it onto each record) and
JSON lines from python-json-logger: both well-kept libraries, so this module holds only what is
RTCstack's own. The LOGGING setting wires them together.
"""

from __future__ import annotations

import logging
import logging.config
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

access_logger = logging.getLogger("rtcstack.access")

REDACTED = "[redacted]"
# URL parameters that are credentials themselves (e.g. the signed link of /recordings/download/<token>).
SECRET_URL_KWARGS = frozenset({"token", "secret", "signature"})
MIN_SECRET_LENGTH = 8  # shorter values would scrub ordinary words


class AccessLogMiddleware:
    """`GET /v1/rooms 200` with method, path, status, duration_ms (and the request id, via the filter).

    The path has no query string, and URL parameters that are credentials are replaced. Off with
    ACCESS_LOG=0 (Caddy's own access log has the same request id in its response headers).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        if access_logger.isEnabledFor(logging.INFO):
            path = logged_path(request)
            access_logger.info(
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        return response


def logged_path(request: HttpRequest) -> str:
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is not None:
        for name, value in match.kwargs.items():
            if name in SECRET_URL_KWARGS and value:
                path = path.replace(str(value), REDACTED)
    return path


def configured_secrets() -> list[str]:
    """The secret values in the settings: SECRET_KEY, API and storage secrets, passwords inside URLs."""
    values: list[str] = [settings.SECRET_KEY, *getattr(settings, "API_KEY_ENCRYPTION_KEYS", [])]
    for name in ("LIVEKIT_API_SECRET", "S3_SECRET_ACCESS_KEY"):
        values.append(getattr(settings, name, "") or "")
    values.append(os.environ.get("WHISPER_API_TOKEN", ""))
    for name in ("DATABASE_URL", "REDIS_URL"):
        password = urlsplit(getattr(settings, name, "") or "").password
        values.append(password or "")
    return [value for value in values if len(value) >= MIN_SECRET_LENGTH]


class RedactSecretsFilter(logging.Filter):
    """Replaces every configured secret value in a record's message, arguments and traceback.

    A last line of defence: code does not log secrets, but an exception message or a URL repr might.
    Secrets are read once, when logging is configured.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        self._secrets = sorted(set(secrets if secrets is not None else configured_secrets()), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed call: the formatter reports it, as without this filter
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest):  # django.request's extra: its repr has the query string
            safe_path = logged_path(request)
            message = message.replace(request.path, safe_path)
            record.request = f"{request.method} {safe_path}"
        record.msg, record.args = self.scrub(message), None
        if not self._secrets:
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
            record.exc_info = None  # formatters would render the unscrubbed traceback again
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: Django's dictConfig, plus Python warnings routed through logging (so through the same
    JSON handler) instead of printed raw to stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def secrets_filter(**_: Any) -> RedactSecretsFilter:
    """Factory for LOGGING's `"()"` key: the secrets are read from the settings when logging is set up."""
    return RedactSecretsFilter()


_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
