import importlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from apps.apikeys import keystore, services
from apps.apikeys.guard import get_guard
from apps.apikeys.signer import signed_headers
from apps.core.redis import get_redis
from tests.support.markers import is_slow_fixture, slow_fixture


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` what makes the fast run (`-m "not slow"`) slow, by cause: a test that uses a fixture tagged with
    tests.support.markers.slow_fixture, directly or through other fixtures (pytest has resolved each test's whole
    fixture closure by now), and a test on a transactional database (`live_server`, `transactional_db`,
    `django_db(transaction=True)`: committed rows for other threads or processes), which truncates every table
    after it, about a second each here."""
    for item in items:
        fixture_info = getattr(item, "_fixtureinfo", None)
        if fixture_info is None:
            continue
        definitions = (d for defs in fixture_info.name2fixturedefs.values() for d in defs)
        if any(is_slow_fixture(definition.func) for definition in definitions) or transactional(item):
            item.add_marker(pytest.mark.slow)


def transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    uses_committed_rows = {"live_server", "transactional_db"} & set(item.fixturenames)
    return bool(uses_committed_rows) or bool(marker and marker.kwargs.get("transaction"))


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
        self.sequence = 0

    def headers(self, method: str, path: str, body: bytes = b"", **overrides: Any) -> dict[str, str]:
        """Signed headers; repeated identical requests get successive timestamps, as a retrying client would."""
        creds = overrides.pop("credentials", self.credentials)
        if "timestamp" not in overrides:
            self.sequence += 1
            overrides["timestamp"] = int(time.time()) + self.sequence % 200
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

    def post_multipart(self, path: str, fields: dict[str, Any]) -> Any:
        """A signed multipart/form-data POST (a recording upload): the signature covers the encoded body."""
        body = encode_multipart(BOUNDARY, fields)
        headers = self.headers("POST", path, body)
        return self.client.generic("POST", path, body, content_type=MULTIPART_CONTENT, **as_meta(headers))


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


def policy_of(response: Any) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def bump_generation(key_id: str) -> None:
    get_guard().bump(key_id)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    from tests.support.servers import moto_s3

    with moto_s3() as config:
        yield config


@pytest.fixture
def s3(s3_server: dict[str, str], settings: Any) -> dict[str, str]:
    """Recordings stored in the moto S3 server, configured as S3_* settings would configure them."""
    from rtcstack_site.env import s3_storage

    for name, value in s3_server.items():
        setattr(settings, name, value)
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": s3_storage(
            bucket=s3_server["S3_BUCKET"],
            endpoint_url=s3_server["S3_ENDPOINT_URL"],
            access_key=s3_server["S3_ACCESS_KEY_ID"],
            secret_key=s3_server["S3_SECRET_ACCESS_KEY"],
            region=s3_server["S3_REGION"],
            url_ttl=settings.RECORDING_URL_TTL_SECONDS,
        ),
    }
    return s3_server


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[Any]:
    from django.conf import settings as django_settings

    from tests.support.livekit_standin import LiveKitStandIn

    with LiveKitStandIn(django_settings.LIVEKIT_API_KEY, django_settings.LIVEKIT_API_SECRET) as server:
        yield server


@pytest.fixture
def livekit(livekit_server: Any, settings: Any) -> Iterator[Any]:
    """The LiveKit stand-in, fresh for each test, as LIVEKIT_URL."""
    livekit_server.reset()
    livekit_server.delay_seconds = 0.0
    livekit_server.start()
    settings.LIVEKIT_URL = livekit_server.url
    yield livekit_server
    livekit_server.start()


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Any]]:
    """Webhook receivers on loopback answering a script of statuses (tests.support.fakes.Receiver), shut down
    after the test."""
    from tests.support.fakes import Receiver

    with ExitStack() as stack:
        yield lambda statuses, **kwargs: stack.enter_context(Receiver(statuses, **kwargs))


@pytest.fixture
@slow_fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (tests.support.browser.chromium), quit after the test."""
    from tests.support.browser import chromium

    with chromium(tmp_path) as driver:
        yield driver


def support_staff_group() -> Any:
    """The "Support staff" group the dashboard migration creates, made again if a transactional test's flush
    removed it (a flush keeps the schema, not data from migrations). Tests use this instead of serialized_rollback,
    which breaks after any other transactional test has re-created the content types."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    migration = importlib.import_module("apps.dashboard.migrations.0001_support_staff_group")
    migration.create_group(apps, None)
    return Group.objects.get(name=migration.GROUP)
