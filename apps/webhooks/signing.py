"""Webhook secrets and signatures: Standard Webhooks plus the reference implementation's header.

Standard Webhooks (https://www.standardwebhooks.com):
    webhook-signature: v1,<base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))>
    where key = base64-decoding of the secret after its "whsec_" prefix.
Reference-compatible:
    X-RTCstack-Signature: sha256=<hex(HMAC-SHA256(secret string as UTF-8, body))>
"""

import base64
import hashlib
import hmac
import secrets

from apps.core.version import __version__

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 24
USER_AGENT = f"RTCstack-Webhooks/{__version__}"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def reference_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header a delivery is POSTed with."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, message_id, timestamp, body),
        "X-RTCstack-Signature": reference_signature(secret, body),
    }
