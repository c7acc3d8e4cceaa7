"""Schema fuzzing: every /v1 operation answers generated requests as its OpenAPI schema says.

schemathesis loads the app's own schema from /v1/schema and, for each operation, generates valid and invalid
requests (path, query, body), which are signed with a real API key exactly as sent, as an app backend signs
them. Each response must not be a server error, and its status code, content type and body must be the ones
the schema documents for that operation, problem responses included.
"""

import os
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client

from apps.recordings.models import Recording
from apps.rooms import services as rooms
from apps.transcription import live as transcription_live
from apps.transcription.models import Segment, Transcription
from apps.webhooks import services as webhooks
from rtcstack_site.wsgi import application
from tests.conftest import Credentials, SignedClient, as_meta

# Bounded for CI: a fixed number of generated requests per operation, the same ones on every run.
# SCHEMA_FUZZ_EXAMPLES=200 digs deeper by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "25"))
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_wsgi("/v1/schema?format=json", application, config=CONFIG)


# Path parameter -> the id of a resource that exists during the test (filled by the `existing` fixture).
EXISTING: dict[str, str] = {}


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> Any:
    """Also aim at resources that exist, so operations answer 200s (and show their bodies), not only 404s."""
    known = {name: EXISTING[name] for name in path_parameters or {} if name in EXISTING}
    return st.sampled_from([path_parameters, {**path_parameters, **known}]) if known else st.just(path_parameters)


class SigningClient(Client):
    """werkzeug's test client, signing each request as it goes out: method, raw path and query, body bytes."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__(application)
        self.signer = SignedClient(credentials)

    def run_wsgi_app(self, environ: dict[str, Any], buffered: bool = False) -> Any:
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = BytesIO(body)
        environ.update(as_meta(self.signer.headers(environ["REQUEST_METHOD"], environ["RAW_URI"], body)))
        return super().run_wsgi_app(environ, buffered=buffered)


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """As Django's test client does: requests must not close the connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def existing(livekit: Any, s3: Any) -> Iterator[dict[str, str]]:
    """One of each resource the /v1 paths name: a room with a participant and an ingress, a recording with its
    transcription, a live transcription and a webhook endpoint."""
    livekit.add_room("fuzz-room")
    livekit.add_participant("fuzz-room", "fuzz-user", tracks=["audio"])
    ingress = rooms.create_ingress(
        "fuzz-room", input_type="rtmp", name="fuzz", participant_identity="fuzz-ingress", participant_name=""
    )
    recording = Recording.objects.create(
        room_name="fuzz-room", source=Recording.Source.UPLOAD, status=Recording.Status.COMPLETED, storage_key="f.wav"
    )
    transcription = Transcription.objects.create(
        kind=Transcription.Kind.POST_CALL,
        status=Transcription.Status.COMPLETED,
        room_name="fuzz-room",
        recording=recording,
    )
    Segment.objects.create(transcription=transcription, start_ms=0, end_ms=1500, text="Hello.", speaker="Alice")
    live, _ = transcription_live.start("fuzz-room", language="", speakers=None, partial_results=False)
    Segment.objects.create(transcription=live, start_ms=0, end_ms=900, text="Hi.", speaker="fuzz-user")
    endpoint, _ = webhooks.create_endpoint("http://93.184.215.14/hooks/fuzz", ["*"])
    EXISTING.update(
        room_id="fuzz-room",
        participant_id="fuzz-user",
        ingress_id=ingress.ingress_id,
        recording_id=recording.id,
        transcription_id=transcription.id,
        webhook_id=endpoint.public_id,
    )
    yield EXISTING
    EXISTING.clear()


@pytest.fixture
def signing_client(credentials: Credentials) -> SigningClient:
    """One per operation, shared by its examples, so repeated identical requests get successive timestamps."""
    return SigningClient(credentials)


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_test_connection")
def test_signing_client_requests_are_accepted_even_when_repeated(signing_client: SigningClient) -> None:
    """Guards the fuzzing below: signed requests get past authentication, so operations are really exercised."""
    for _ in range(3):
        response = signing_client.get("/v1/webhooks", query_string={"limit": "5"})
        assert response.status_code == 200, response.get_data()


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("keep_test_connection", "existing")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_answers_as_documented(case: schemathesis.Case, signing_client: SigningClient) -> None:
    """No 5xx; status code, content type and body as documented (LiveKit stand-in and moto S3 behind)."""
    case.call_and_validate(session=signing_client, checks=CHECKS)
