"""RFC 7807 problem details: the one error shape of every /v1 response (SPEC §4)."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://rtcstack.dev/errors/"
API_PREFIX = "/v1/"


class Problem(exceptions.APIException):
    """An error with a stable `kind` (the last part of its type URI) and a human detail."""

    status_code = 500
    kind = "internal-error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        if kind:
            self.kind = kind
        if title:
            self.title = title
        if status:
            self.status_code = status
        self.headers = headers or {}


class Unauthorized(Problem, exceptions.AuthenticationFailed):
    """Also an AuthenticationFailed, so DRF attaches the WWW-Authenticate challenge."""

    status_code = 401
    kind = "unauthorized"
    title = "Unauthorized"


class Forbidden(Problem):
    status_code = 403
    kind = "forbidden"
    title = "Forbidden"


class NotFound(Problem):
    status_code = 404
    kind = "not-found"
    title = "Not found"


def get_or_404(queryset: Any, detail: str, **lookup: Any) -> Any:
    """The one object matching `lookup`, or a 404 problem saying what was not found."""
    found = queryset.filter(**lookup).first()
    if found is None:
        raise NotFound(detail)
    return found


class Conflict(Problem):
    status_code = 409
    kind = "conflict"
    title = "Conflict"


class PayloadTooLarge(Problem):
    status_code = 413
    kind = "payload-too-large"
    title = "Payload too large"


class RateLimited(Problem):
    status_code = 429
    kind = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(Problem):
    """A dependency (Redis, LiveKit, storage) is unreachable or not configured."""

    status_code = 503
    kind = "service-unavailable"
    title = "Service unavailable"


DATABASE_UNREACHABLE = "The database cannot be reached; retry shortly."


def database_unreachable(exc: OperationalError | InterfaceError) -> ServiceUnavailable:
    """An outage fails every request that touches the database: one line each, not a traceback each."""
    reason = str(exc).strip().splitlines()
    logger.error("Database unreachable (%s): %s", exc.__class__.__name__, reason[0] if reason else "no detail")
    return ServiceUnavailable(DATABASE_UNREACHABLE)


# DRF's own exceptions, mapped to stable kinds and titles.
DRF_KINDS: dict[type[exceptions.APIException], tuple[str, str]] = {
    exceptions.ValidationError: ("validation-error", "Invalid request"),
    exceptions.ParseError: ("malformed-request", "Malformed request"),
    exceptions.NotAuthenticated: ("unauthorized", "Unauthorized"),
    exceptions.AuthenticationFailed: ("unauthorized", "Unauthorized"),
    exceptions.PermissionDenied: ("forbidden", "Forbidden"),
    exceptions.NotFound: ("not-found", "Not found"),
    exceptions.MethodNotAllowed: ("method-not-allowed", "Method not allowed"),
    exceptions.NotAcceptable: ("not-acceptable", "Not acceptable"),
    exceptions.UnsupportedMediaType: ("unsupported-media-type", "Unsupported media type"),
    exceptions.Throttled: ("rate-limited", "Too many requests"),
}


def problem_body(status: int, kind: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, **extra}


def _flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's error tree as `{field: [messages]}`; nested objects' fields are dotted (`options.partialResults`)."""
    if not isinstance(detail, dict):
        return {prefix or "non_field_errors": [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]}
    flat: dict[str, list[str]] = {}
    for field, messages in detail.items():
        flat.update(_flatten_errors(messages, f"{prefix}.{field}" if prefix else str(field)))
    return flat


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes a problem; unknown ones are logged, never shown."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "Permission denied.")
    elif isinstance(exc, OperationalError | InterfaceError):
        exc = database_unreachable(exc)

    if isinstance(exc, Problem):
        body = problem_body(exc.status_code, exc.kind, exc.title, str(exc.detail))
        headers = dict(exc.headers)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
    elif isinstance(exc, exceptions.ValidationError):
        body = problem_body(
            400,
            "validation-error",
            "Invalid request",
            "The request body failed validation; see errors.",
            errors=_flatten_errors(exc.detail),
        )
        headers = {}
    elif isinstance(exc, exceptions.APIException):
        kind, title = next(
            (pair for cls, pair in DRF_KINDS.items() if isinstance(exc, cls)), ("error", "Request failed")
        )
        body = problem_body(exc.status_code, kind, title, str(exc.detail))
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.MethodNotAllowed):
            view = context.get("view")
            if view is not None:
                headers["Allow"] = ", ".join(view.allowed_methods)
    else:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        body = problem_body(500, "internal-error", "Internal server error", "The server failed to handle this request.")
        headers = {}
    return Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _problem_or_default(request: HttpRequest, status: int, kind: str, title: str, detail: str) -> HttpResponse | None:
    if not request.path.startswith(API_PREFIX):
        return None
    return problem_response(Problem(detail, kind=kind, title=title, status=status))


def problem_response(problem: Problem) -> JsonResponse:
    """A problem answered outside DRF (middleware, Django's error handlers): the same body as in views."""
    return JsonResponse(
        problem_body(problem.status_code, problem.kind, problem.title, str(problem.detail)),
        status=problem.status_code,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _problem_or_default(
        request, 400, "malformed-request", "Malformed request", "The request could not be read."
    ) or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _problem_or_default(
        request, 403, "forbidden", "Forbidden", "You may not do this."
    ) or defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _problem_or_default(
        request, 404, "not-found", "Not found", f"No endpoint at {request.path}."
    ) or defaults.page_not_found(request, exception)


def unknown_endpoint(request: HttpRequest) -> HttpResponse:
    """Catch-all for /v1: a problem even when DEBUG would show Django's technical 404 page."""
    return page_not_found(request, Http404())


def server_error(request: HttpRequest) -> HttpResponse:
    return _problem_or_default(
        request, 500, "internal-error", "Internal server error", "The server failed to handle this request."
    ) or defaults.server_error(request)
