"""Request body limits: small JSON endpoints take a small body, only the upload a large one, judged before reading."""

import json
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from apps.apikeys.signer import signed_headers
from apps.recordings.models import Recording
from tests.conftest import SignedClient, as_meta, problem
from tests.support.servers import granian_wsgi

TOKEN_BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}
KIB = 1024


def padded_token_body(size: int) -> bytes:
    """A valid token request of exactly `size` bytes (JSON allows trailing whitespace)."""
    body = json.dumps(TOKEN_BODY).encode()
    return body + b" " * (size - len(body))


def assert_too_large(response) -> None:
    assert response.status_code == 413, response.content
    assert problem(response)["type"].endswith("/payload-too-large")


@pytest.fixture
def local_recordings(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    settings.S3_BUCKET = ""
    settings.RECORDING_UPLOAD_MAX_BYTES = 256 * KIB
    return tmp_path


def upload(api: SignedClient, media: bytes) -> object:
    return api.post_multipart("/v1/recordings", {"roomId": "standup", "file": SimpleUploadedFile("call.wav", media)})


def test_json_endpoint_takes_a_small_body(api: SignedClient) -> None:
    assert settings.API_MAX_BODY_BYTES == 128 * KIB  # twice the largest field, 64 KiB of metadata
    response = api.send("POST", "/v1/token", padded_token_body(settings.API_MAX_BODY_BYTES))
    assert response.status_code == 200, response.content


def test_json_endpoint_refuses_a_larger_body(api: SignedClient) -> None:
    response = api.send("POST", "/v1/token", padded_token_body(settings.API_MAX_BODY_BYTES + 1))
    assert_too_large(response)
    assert str(settings.API_MAX_BODY_BYTES) in problem(response)["detail"]


def test_knowing_a_key_id_is_not_enough_to_make_the_server_hash_megabytes(api: SignedClient, credentials) -> None:
    forged = type(credentials)(credentials.key_id, "not-the-secret-at-all-0123456789")
    assert_too_large(api.send("POST", "/v1/token", padded_token_body(10 * 1024 * KIB), credentials=forged))


def test_body_is_refused_by_its_declared_length_before_it_is_read(api: SignedClient) -> None:
    """The client announces 10 MiB and has sent a few bytes: the answer comes without waiting for the rest."""
    body = json.dumps(TOKEN_BODY).encode()
    headers = api.headers("POST", "/v1/token", body)
    response = api.client.generic(
        "POST", "/v1/token", body, content_type="application/json", CONTENT_LENGTH=str(10 * 1024 * KIB),
        **as_meta(headers),
    )  # fmt: skip
    assert_too_large(response)


@pytest.mark.slow  # granian processes
def test_real_server_answers_413_without_waiting_for_the_body(transactional_db, make_key) -> None:
    """Under the production server, a forger announcing 10 MiB is answered at once; the body is never sent."""
    credentials = make_key()
    forged = signed_headers(credentials.key_id, "not-the-secret-at-all-0123456789", "POST", "/v1/token", b"{}")
    head = "".join(f"{name}: {value}\r\n" for name, value in forged.items())
    with granian_wsgi(workers=1) as url:
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(
                f"POST /v1/token HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {10 * 1024 * KIB}\r\n{head}\r\n{{}}".encode()
            )
            answer = sock.recv(65536)  # times out if the server waits for the 10 MiB
            while b"payload-too-large" not in answer and (more := sock.recv(65536)):
                answer += more
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"payload-too-large" in answer


def test_upload_may_be_exactly_the_limit(api: SignedClient, local_recordings) -> None:
    media = b"\x01" * (256 * KIB)
    response = upload(api, media)
    assert response.status_code == 201, response.content
    assert (local_recordings / response.json()["storageKey"]).read_bytes() == media


def test_upload_just_over_the_limit_is_refused_and_not_stored(api: SignedClient, local_recordings) -> None:
    response = upload(api, b"\x01" * (256 * KIB + 32 * KIB))
    assert_too_large(response)
    assert "262144" in problem(response)["detail"]
    assert not Recording.objects.exists()
    assert list(local_recordings.rglob("*.wav")) == []


def test_upload_far_over_the_limit_is_refused_before_it_is_read(api: SignedClient, local_recordings) -> None:
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("call.wav", b"\x01" * 100)})
    headers = api.headers("POST", "/v1/recordings", body)
    response = api.client.generic(
        "POST", "/v1/recordings", body, content_type=MULTIPART_CONTENT, CONTENT_LENGTH=str(5 * 1024 * KIB),
        **as_meta(headers),
    )  # fmt: skip
    assert_too_large(response)


def test_livekit_webhook_body_is_limited_too(client) -> None:
    """The receiver verifies LiveKit's JWT over the body: a stranger must not make it read megabytes first."""
    response = client.generic(
        "POST", "/v1/livekit/webhook", b"{}", content_type="application/webhook+json",
        CONTENT_LENGTH=str(10 * 1024 * KIB), HTTP_AUTHORIZATION="forged",
    )  # fmt: skip
    assert_too_large(response)


def test_malformed_content_length_is_a_400_problem(api: SignedClient) -> None:
    body = json.dumps(TOKEN_BODY).encode()
    headers = api.headers("POST", "/v1/token", body)
    response = api.client.generic(
        "POST", "/v1/token", body, content_type="application/json", CONTENT_LENGTH="lots", **as_meta(headers)
    )
    assert response.status_code == 400
    assert problem(response)["type"].endswith("/malformed-request")
