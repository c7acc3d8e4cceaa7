"""Describes the signed-request scheme in the OpenAPI schema."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SignedRequestScheme(OpenApiAuthenticationExtension):
    target_class = "apps.apikeys.authentication.SignedRequestAuthentication"
    name = "SignedRequest"

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
