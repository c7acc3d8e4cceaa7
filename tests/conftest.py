import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from apps.apikeys import keystore, services
from apps.apikeys.guard import get_guard
from apps.apikeys.signer import signed_headers
from apps.core.redis import get_redis


@pytest.fixture(autouse=True)
def clean_redis_and_key_cache() -> Iterator[None]:
    """Each test starts with an empty replay set, no rate counters and no cached keys."""
    client = get_redis()
    assert client is not None, "the tests run against a real Redis (REDIS_URL)"
    client.flushdb()
    keystore.clear()
    yield
    keystore.clear()


@dataclass
class Credentials:
    key_id: str
    secret: str


def as_meta(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


class SignedClient:
    """Django's test client plus the signing an app backend does (the project's own signer)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.client = Client()

    def headers(self, method: str, path: str, body: bytes = b"", **overrides: Any) -> dict[str, str]:
        creds = overrides.pop("credentials", self.credentials)
        return signed_headers(creds.key_id, creds.secret, method, path, body, **overrides)

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        **sign_overrides: Any,
    ) -> Any:
        headers = headers if headers is not None else self.headers(method, path, body, **sign_overrides)
        return self.client.generic(method, path, body, content_type="application/json", **as_meta(headers))

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return self.send("POST", path, json.dumps(payload).encode(), **kwargs)


@pytest.fixture
def make_key(db: None) -> Any:
    def make(name: str = "backend", scopes: tuple[str, ...] = ("all",), **kwargs: Any) -> Credentials:
        key, secret = services.create_api_key(name, scopes, **kwargs)
        return Credentials(key.key_id, secret)

    return make


@pytest.fixture
def credentials(make_key: Any) -> Credentials:
    return make_key()


@pytest.fixture
def api(credentials: Credentials) -> SignedClient:
    return SignedClient(credentials)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """Key changes invalidate caches on commit; inside a test transaction, run those callbacks now."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def problem(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json", response.content
    body = json.loads(response.content)
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == response.status_code
    return body


def bump_generation(key_id: str) -> None:
    get_guard().bump(key_id)
