"""The OpenAPI schema's shared parts: the signed-request scheme and the problem responses of every operation."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .problems import PROBLEM_CONTENT_TYPE, TYPE_BASE

SIGNED_REQUEST = "SignedRequest"


class SignedRequestScheme(OpenApiAuthenticationExtension):
    target_class = "apps.apikeys.authentication.SignedRequestAuthentication"
    name = SIGNED_REQUEST

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": (
                "Also send X-RTCstack-Timestamp (Unix seconds) and X-RTCstack-Signature: sha256=<hex "
                "HMAC-SHA256(secret, METHOD\\nPATH?QUERY\\nTIMESTAMP\\nhex(SHA256(body)))>. "
                "Each signature is accepted once, within 300 s of its timestamp."
            ),
        }


class ProblemSerializer(serializers.Serializer):
    """An RFC 7807 problem, as apps.core.problems renders every error (schema only)."""

    type = serializers.URLField(help_text=f"Stable error kind: {TYPE_BASE}<kind>.")
    title = serializers.CharField()
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong, for a human.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: messages per field (nested fields dotted, e.g. options.partialResults).",
    )


PROBLEM_DESCRIPTIONS = {
    400: "The request is invalid (see errors) or malformed.",
    401: "Missing, invalid, stale or replayed signature, or an unknown, revoked or expired key.",
    403: "The API key lacks this endpoint's scope.",
    404: "No such resource.",
    409: "The resource's state does not allow this.",
    413: "The request body is too large.",
    415: "The body's content type is not one the operation takes.",
    429: "The key's rate limit is spent; see Retry-After.",
    502: "LiveKit answered with an error (e.g. it refused RTCstack's credentials).",
    503: "A dependency (database, Redis, LiveKit, storage) is unreachable or not configured.",
}


def problems(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """Problem responses for `extend_schema(responses=...)`, beyond those every operation gets (see AutoSchema)."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, PROBLEM_DESCRIPTIONS[status])
        for status in statuses
    }


class AutoSchema(SpectacularAutoSchema):
    """Documents the problem responses an operation can return, from what the operation is.

    401, 429 and 503 on every signed operation (verification needs Redis and the database), 403 where a scope is
    required, 400 where there are parameters or a body (a NUL in a path is malformed too), 413 and 415 where there
    is a body, 404 where the path names a resource, 409 and 502 where the view calls LiveKit (`calls_livekit = True`:
    LiveKit's refusals and errors are relayed). A view declares any other (409) with `problems()`.
    """

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in sorted(self._problem_statuses(operation)):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    OpenApiResponse(ProblemSerializer, PROBLEM_DESCRIPTIONS[status]),
                    str(status),
                    media_types=[PROBLEM_CONTENT_TYPE],
                )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _problem_statuses(self, operation: dict[str, Any]) -> set[int]:
        statuses = set()
        where = {parameter["in"] for parameter in operation.get("parameters", [])}
        if "requestBody" in operation:
            statuses |= {400, 413, 415}
        if where:
            statuses.add(400)
        if "path" in where:
            statuses.add(404)
        if {SIGNED_REQUEST: []} in operation.get("security", []):
            statuses |= {401, 429, 503}
            if getattr(self.view, "required_scope", None):
                statuses.add(403)
        if getattr(self.view, "calls_livekit", False):
            statuses |= {409, 502}
        return statuses
