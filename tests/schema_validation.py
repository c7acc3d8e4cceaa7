"""Every /v1 response the test suite receives must be one the published OpenAPI schema declares.

`ResponseSchemaMiddleware` (installed first in tests/settings.py, so it sees what the client sees, problem
responses of the other middleware included) checks, for each in-process request under /v1/: the status code
is declared for the operation, the content type is declared for that status, and the body is valid against
the declared schema. A mismatch raises `ResponseSchemaMismatchError`; Django's test client re-raises it in the test
that made the request, naming the operation, the status and the schema error.

The schema is the one `manage.py spectacular` publishes (drf-spectacular's generator), read once per process.
Objects are checked strictly: a property the schema does not list is an error (a field rendered but not
documented is the drift this guards against), as is a missing required one or a wrong type or format.
Bodies are validated with openapi-schema-validator (OpenAPI 3.0 semantics: `nullable`, `readOnly`).
Requests that match no operation (the catch-all's 404, a 405 for an undocumented method) and a 500 (the server
failing, which no operation declares) must be problems; the schema and docs pages are not operations.
"""

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from drf_spectacular.generators import SchemaGenerator
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from apps.core.problems import PROBLEM_CONTENT_TYPE, unknown_endpoint

API_PREFIX = "/v1/"
PROBLEM = {"$ref": "#/components/schemas/Problem"}


class ResponseSchemaMismatchError(AssertionError):
    """A /v1 response that the OpenAPI schema does not declare."""


@cache
def published_schema() -> dict[str, Any]:
    """The OpenAPI document as `manage.py spectacular` writes it, objects made strict (see the module docstring)."""
    return strict(SchemaGenerator().get_schema(request=None, public=True))


def strict(node: Any) -> Any:
    """The schema with every object that lists its properties closed to others."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: strict(value) for key, value in node.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


@cache
def _validator(schema_json: str) -> OAS30ReadValidator:
    """One validator per distinct response schema; `$ref`s resolve against the document's components."""
    root = {"allOf": [json.loads(schema_json)], "components": published_schema()["components"]}
    return OAS30ReadValidator(root, format_checker=oas30_format_checker)


def _route(match: ResolverMatch) -> str:
    """Django's route (`v1/rooms/<str:room_id>`) as the schema's path (`/v1/rooms/{room_id}`)."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", match.route)


def _match(request: HttpRequest) -> ResolverMatch | None:
    if request.resolver_match is not None:
        return request.resolver_match
    try:
        return resolve(request.path_info)
    except Resolver404:
        return None


def check_response(request: HttpRequest, response: HttpResponse) -> None:
    """Raise `ResponseSchemaMismatchError` unless the schema declares this response to this /v1 request."""
    if not request.path_info.startswith(API_PREFIX) or request.method in ("HEAD", "OPTIONS"):
        return
    if response.status_code == 500:  # the server failing, which no operation declares: still a problem
        _check_problem(f"{request.method} {request.path_info}", response)
        return
    match = _match(request)
    paths = published_schema()["paths"]
    path = _route(match) if match is not None else None
    if path in paths:
        operation = paths[path].get(request.method.lower())
        if operation is not None:
            _check_operation(f"{request.method} {path} ({operation['operationId']})", operation, response)
            return
    elif match is not None and match.func is not unknown_endpoint:
        return  # the schema and docs pages: not operations
    _check_problem(f"{request.method} {request.path_info} (no operation)", response)


def _check_operation(name: str, operation: dict[str, Any], response: HttpResponse) -> None:
    status = str(response.status_code)
    declared = operation["responses"].get(status)
    if declared is None:
        raise ResponseSchemaMismatchError(
            f"{name}: status {status} is not declared (declared: {', '.join(operation['responses'])})"
        )
    content = declared.get("content")
    if not content:
        if _body(response):
            raise ResponseSchemaMismatchError(
                f"{name}: status {status} declares no body, got {_body(response)[:200]!r}"
            )
        return
    media_type = response.get("Content-Type", "").split(";")[0].strip()
    if media_type not in content:
        raise ResponseSchemaMismatchError(
            f"{name}: status {status} with content type {media_type!r} is not declared (declared: {', '.join(content)})"
        )
    _check_body(f"{name}: status {status} ({media_type})", content[media_type]["schema"], response, media_type)


def _check_problem(name: str, response: HttpResponse) -> None:
    if response.status_code < 400:
        return
    media_type = response.get("Content-Type", "").split(";")[0].strip()
    if media_type != PROBLEM_CONTENT_TYPE:
        raise ResponseSchemaMismatchError(f"{name}: status {response.status_code} is {media_type!r}, not a problem")
    _check_body(f"{name}: status {response.status_code}", PROBLEM, response, media_type)


def _body(response: HttpResponse) -> bytes:
    return b"" if response.streaming else response.content


def _check_body(name: str, schema: dict[str, Any], response: HttpResponse, media_type: str) -> None:
    if response.streaming:
        return
    decode: Callable[[bytes], Any] = json.loads if media_type.endswith("json") else bytes.decode
    try:
        body = decode(response.content)
    except ValueError as error:
        raise ResponseSchemaMismatchError(f"{name}: the body is not {media_type}: {error}") from error
    error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(body))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(the body)"
        raise ResponseSchemaMismatchError(f"{name}: at {where}: {error.message}")


class ResponseSchemaMiddleware:
    """Test-only: checks every /v1 response against the published schema (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        check_response(request, response)
        return response
