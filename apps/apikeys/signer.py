"""Sign RTCstack /v1 requests (SPEC §4). The server verifies with the same functions.

Standalone on purpose (standard library + requests only): app backends may copy this file.

    import requests
    from apps.apikeys.signer import RTCstackAuth
    requests.post(url, json={...}, auth=RTCstackAuth(KEY_ID, SECRET))
"""

import hashlib
import hmac
import time
from urllib.parse import urlsplit

import requests

API_KEY_HEADER = "X-Api-Key"
TIMESTAMP_HEADER = "X-RTCstack-Timestamp"
SIGNATURE_HEADER = "X-RTCstack-Signature"
SIGNATURE_PREFIX = "sha256="


def canonical_request(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    """METHOD \\n PATH(+query as sent) \\n TIMESTAMP \\n hex(SHA-256(body))."""
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{body_hash}".encode()


def compute_signature(secret: str | bytes, method: str, path: str, timestamp: str, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, canonical_request(method, path, timestamp, body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signed_headers(
    key_id: str, secret: str, method: str, path: str, body: bytes = b"", timestamp: int | None = None
) -> dict[str, str]:
    """The three auth headers for one request; `path` includes the query string exactly as it is sent."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        API_KEY_HEADER: key_id,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: compute_signature(secret, method, path, ts, body),
    }


class RTCstackAuth(requests.auth.AuthBase):
    """`requests` auth that signs each prepared request (method, path + query, body bytes) as sent."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            raise TypeError("RTCstackAuth signs bytes bodies only; pass data=bytes, json=... or files read in memory")
        request.headers.update(signed_headers(self.key_id, self.secret, request.method or "GET", path, body))
        return request
