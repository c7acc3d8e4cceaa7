"""Bad input is a 4xx problem, never a 500, and never a logged traceback (issue 11, items 9 and 10)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import orjson
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from livekit.protocol import models

from apps.recordings.models import Recording
from apps.rooms.models import LiveKitEvent, ParticipantSession, Room, RoomSession
from apps.transcription.models import Transcription
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookDelivery
from rtcstack_site.env import s3_storage
from tests.conftest import Credentials, SignedClient, problem
from tests.support.dashboard import connect, session_cookie
from tests.support.livekit_standin import WEBHOOK_CONTENT_TYPE, sign_webhook, webhook_body

pytestmark = pytest.mark.django_db

PUBLIC_URL = "http://93.184.215.14/hooks/rtc"  # a public address literal: nothing is sent to it


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Bad input must not be logged as a server error: a traceback per request is a log-flooding vector."""
    yield
    with_traceback = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert not with_traceback


@pytest.fixture
def local_storage(settings: Any, tmp_path: Path) -> Path:
    """Recordings as local files (the embedded default) under a directory of the test's own."""
    root = tmp_path / "recordings"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    settings.S3_BUCKET = ""
    return root


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def errors_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    return problem(response)["errors"]


# ------------------------------------------------------------------ X-RTCstack-Timestamp


@pytest.mark.parametrize(
    "timestamp",
    ["9" * 5000, "17000000\N{SUPERSCRIPT TWO}", "".join(chr(0x660 + int(d)) for d in "1700000000"), "1" * 13],
    ids=["5000 digits", "superscript digit", "arabic-indic digits", "milliseconds"],
)
def test_a_malformed_timestamp_is_an_invalid_timestamp_401(api: SignedClient, timestamp: str) -> None:
    response = api.send("GET", "/v1/recordings", timestamp=timestamp)
    assert response.status_code == 401
    assert problem(response)["type"].endswith("/invalid-timestamp")


# ------------------------------------------------------------------ integers LiveKit or PostgreSQL cannot hold


@pytest.mark.parametrize("field", ["maxParticipants", "emptyTimeout"])
@pytest.mark.parametrize("value", [2**32, 2**31], ids=["beyond uint32", "beyond integer column"])
def test_room_limits_beyond_what_is_stored_are_400(api: SignedClient, livekit: Any, field: str, value: int) -> None:
    response = api.post_json("/v1/rooms", {"name": "big", field: value})
    assert field in errors_of(response)
    assert not livekit.calls_to("CreateRoom")
    assert not Room.objects.exists()


def test_room_metadata_with_a_nul_is_400(api: SignedClient, livekit: Any) -> None:
    response = api.post_json("/v1/rooms", {"name": "standup", "metadata": "state\x00"})
    assert "metadata" in errors_of(response)
    assert not livekit.calls_to("CreateRoom")


def test_the_largest_room_limits_are_accepted(api: SignedClient, livekit: Any) -> None:
    largest = 2**31 - 1
    response = api.post_json("/v1/rooms", {"name": "big", "maxParticipants": largest, "emptyTimeout": largest})
    assert response.status_code == 201, response.content
    assert Room.objects.get(name="big").max_participants == largest


LISTS = [
    "/v1/recordings",
    "/v1/transcriptions",
    "/v1/webhooks",
    "/v1/webhooks/{webhook}/deliveries",
    "/v1/rooms",
    "/v1/rooms/standup/participants",
    "/v1/rooms/standup/ingress",
]


@pytest.mark.parametrize("path", LISTS)
def test_an_offset_beyond_bigint_is_400_on_every_list(api: SignedClient, livekit: Any, path: str) -> None:
    livekit.add_participant("standup", "alice")
    endpoint, _ = webhooks.create_endpoint(PUBLIC_URL, ["*"])
    path = path.format(webhook=endpoint.public_id)
    assert "offset" in errors_of(api.send("GET", f"{path}?offset={2**63}"))
    largest = api.send("GET", f"{path}?offset={2**63 - 1}")
    assert largest.status_code == 200, largest.content
    assert largest.json()["offset"] == 2**63 - 1


# ------------------------------------------------------------------ NUL in a path


API_PATHS = [
    ("GET", "/v1/recordings/%00"),
    ("DELETE", "/v1/recordings/%00"),
    ("POST", "/v1/recordings/%00/transcribe"),
    ("GET", "/v1/rooms/%00/recording"),
    ("GET", "/v1/rooms/%00/transcription"),
    ("GET", "/v1/transcriptions/%00"),
    ("DELETE", "/v1/transcriptions/%00"),
    ("GET", "/v1/webhooks/%00"),
    ("GET", "/v1/webhooks/%00/deliveries"),
]


@pytest.mark.parametrize(("method", "path"), API_PATHS)
def test_a_nul_in_an_api_path_is_a_400_problem(api: SignedClient, method: str, path: str) -> None:
    response = api.send(method, path)
    assert response.status_code == 400, response.content
    assert problem(response)["type"].endswith("/malformed-request")


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/rooms/%00/",
        "/dashboard/transcripts/%00/",
        "/admin/recordings/recording/%00/change/",
        "/admin/transcription/transcription/%00/change/",
    ],
)
def test_a_nul_in_a_page_path_is_400(admin_client: Any, path: str) -> None:
    assert admin_client.get(path).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_nul_in_a_dashboard_socket_path_is_refused() -> None:
    cookie = session_cookie(support_staff=True)

    async def scenario() -> tuple[bool, Any]:
        communicator = connect("/ws/dashboard/rooms/%00/", cookie)
        try:
            return await communicator.connect()
        finally:
            await communicator.wait()

    connected, _ = async_to_sync(scenario)()
    assert not connected


# ------------------------------------------------------------------ storage keys and directories


OUTSIDE = ["../outside.mp4", "imports/../../outside.mp4", "/etc/hostname"]
NOT_NORMALISED = ["./imports/a.mp4", "imports//a.mp4", "imports/./a.mp4"]
DIRECTORIES = [".", "imports", "imports/"]


@pytest.mark.parametrize("key", OUTSIDE + NOT_NORMALISED + DIRECTORIES)
def test_register_takes_only_a_normalised_key_of_a_regular_local_file(
    api: SignedClient, local_storage: Path, key: str
) -> None:
    (local_storage / "imports").mkdir()
    (local_storage / "imports" / "a.mp4").write_bytes(b"media")
    (local_storage.parent / "outside.mp4").write_bytes(b"not a recording")
    assert "storageKey" in errors_of(api.post_json("/v1/recordings", {"storageKey": key}))
    assert not Recording.objects.exists()
    registered = api.post_json("/v1/recordings", {"storageKey": "imports/a.mp4"})
    assert registered.status_code == 201, registered.content
    assert registered.json()["size"] == len(b"media")


@pytest.mark.parametrize("key", ["../a.mp4", "/a.mp4", "imports/", "imports/../a.mp4"])
def test_register_takes_only_a_normalised_key_of_an_s3_object(api: SignedClient, s3: Any, key: str) -> None:
    bucket = boto3.client(
        "s3",
        endpoint_url=s3["S3_ENDPOINT_URL"],
        aws_access_key_id=s3["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3["S3_SECRET_ACCESS_KEY"],
        region_name=s3["S3_REGION"],
    )
    bucket.put_object(Bucket="recordings", Key="a.mp4", Body=b"media")
    bucket.put_object(Bucket="recordings", Key="imports/", Body=b"")  # a "folder" as S3 consoles create them
    assert "storageKey" in errors_of(api.post_json("/v1/recordings", {"storageKey": key}))
    assert not Recording.objects.exists()


def test_a_directory_is_never_a_recording_to_transcribe(api: SignedClient, local_storage: Path) -> None:
    (local_storage / "imports").mkdir()
    api.post_json("/v1/recordings", {"storageKey": "imports"})
    assert not Recording.objects.exists()
    assert not Transcription.objects.exists()


@pytest.mark.parametrize("room_id", ["../../outside", "/srv/outside", "a/../../outside"])
def test_an_upload_room_id_outside_storage_is_400(api: SignedClient, local_storage: Path, room_id: str) -> None:
    response = api.post_multipart("/v1/recordings", {"roomId": room_id, "file": SimpleUploadedFile("a.ogg", b"media")})
    assert "roomId" in errors_of(response)
    assert not Recording.objects.exists()
    assert not list(local_storage.parent.parent.rglob("a*.ogg"))


def test_download_of_a_file_that_became_a_directory_is_404(api: SignedClient, local_storage: Path) -> None:
    (local_storage / "a.ogg").write_bytes(b"media")
    link = api.post_json("/v1/recordings", {"storageKey": "a.ogg"}).json()["downloadUrl"]
    (local_storage / "a.ogg").unlink()
    (local_storage / "a.ogg").mkdir()
    response = api.client.get(local_path(link))
    assert response.status_code == 404


def test_download_with_storage_unreachable_is_503(api: SignedClient, local_storage: Path, settings: Any) -> None:
    (local_storage / "a.ogg").write_bytes(b"media")
    link = api.post_json("/v1/recordings", {"storageKey": "a.ogg"}).json()["downloadUrl"]
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": s3_storage(bucket="recordings", endpoint_url="http://127.0.0.1:1", access_key="a",
                                 secret_key="b", region="us-east-1", url_ttl=60),
    }  # fmt: skip
    response = api.client.get(local_path(link))
    assert response.status_code == 503
    assert "S3_ENDPOINT_URL" in problem(response)["detail"]


# ------------------------------------------------------------------ poison LiveKit webhooks


def deliver(client: Client, event: Any) -> Any:
    """POST a LiveKit webhook as livekit-server signs it (the stand-in's signing) to the receiver."""
    body = webhook_body(event)
    return client.post(
        "/v1/livekit/webhook",
        body,
        content_type=WEBHOOK_CONTENT_TYPE,
        HTTP_AUTHORIZATION=sign_webhook(body, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET),
    )


def room(name: str = "standup", **fields: Any) -> models.Room:
    return models.Room(name=name, sid=fields.pop("sid", "RM_standup"), **fields)


def participant(identity: str = "alice", **fields: Any) -> models.ParticipantInfo:
    return models.ParticipantInfo(identity=identity, sid=fields.pop("sid", "PA_alice"), **fields)


POISON = {
    "room name too long": ("room_started", {"room": room("r" * 257)}),
    "room sid too long": ("room_started", {"room": room(sid="RM_" + "x" * 100)}),
    "event id too long": ("room_started", {"room": room(), "id": "EV_" + "x" * 200}),
    "event name too long": ("x" * 100, {"room": room()}),
    "NUL in room name": ("room_started", {"room": room("stand\x00up")}),
    "NUL in identity": ("participant_joined", {"room": room(), "participant": participant("al\x00ice")}),
    "NUL in event id": ("room_started", {"room": room(), "id": "EV_\x00"}),
    "identity too long": ("participant_joined", {"room": room(), "participant": participant("a" * 300)}),
    "createdAt beyond the calendar": ("room_started", {"room": room(), "created_at": 10**15}),
    "createdAt before the calendar": ("room_started", {"room": room(), "created_at": -(10**15)}),
    "joinedAt beyond the calendar": (
        "participant_joined",
        {"room": room(), "participant": participant(joined_at=2**62)},
    ),
    "participant count beyond an integer column": (
        "participant_joined",
        {
            "room": room(num_participants=2**32 - 1),
            "participant": participant(),
        },
    ),
}


@pytest.mark.parametrize("case", POISON)
def test_a_poison_livekit_event_is_400_and_stores_nothing(client: Client, livekit_server: Any, case: str) -> None:
    webhooks.create_endpoint(PUBLIC_URL, ["*"])
    event, fields = POISON[case]
    response = deliver(client, livekit_server.webhook_event(event, **fields))
    assert response.status_code == 400, response.content
    assert problem(response)["type"].endswith("/invalid-livekit-event")
    for model in (LiveKitEvent, Room, RoomSession, ParticipantSession, WebhookDelivery):
        assert not model.objects.exists(), model
    fine = deliver(client, livekit_server.webhook_event("participant_joined", room=room(), participant=participant()))
    assert fine.status_code == 200, fine.content
    assert WebhookDelivery.objects.filter(event="participant_joined").exists()


def test_an_egress_file_name_too_long_to_store_is_400(client: Client, livekit: Any, api: SignedClient, s3: Any) -> None:
    livekit.add_participant("standup", "alice")
    recording = api.post_json("/v1/rooms/standup/recording/start", {}).json()
    before = Recording.objects.get()
    info = livekit.finish_egress(recording["egressId"], filename="standup/" + "x" * 2000 + ".mp4")
    response = deliver(client, livekit.webhook_event("egress_ended", egress_info=info))
    assert response.status_code == 400, response.content
    after = Recording.objects.get()
    assert (after.status, after.storage_key) == (before.status, before.storage_key)


# ------------------------------------------------------------------ live transcription input


@pytest.mark.parametrize("identity", ["ali\x00ce", "", "x" * 257], ids=["NUL", "empty", "257 characters"])
@pytest.mark.parametrize("path", ["/v1/rooms/standup/transcription/start", "/v1/rooms/standup/transcription/speakers"])
def test_a_bad_speaker_identity_is_400(api: SignedClient, path: str, identity: str) -> None:
    method = "POST" if path.endswith("/start") else "PATCH"
    body = orjson.dumps({"participants": {identity: "Alice"}})
    assert "participants" in errors_of(api.send(method, path, body))


def test_a_cursor_beyond_bigint_is_400(api: SignedClient) -> None:
    assert "since" in errors_of(api.send("GET", f"/v1/rooms/standup/transcription?since={2**70}"))


def test_a_nul_in_the_key_id_is_an_unknown_key(api: SignedClient) -> None:
    response = api.send("GET", "/v1/recordings", credentials=Credentials("rk_\x00", "secret"))
    assert response.status_code == 401
    assert problem(response)["type"].endswith("/unknown-key")
