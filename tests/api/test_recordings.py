"""Recordings: egress to S3 (moto server on loopback), LiveKit's egress webhooks, uploads, downloads, deletion."""

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from django.contrib.admin.utils import quote
from django.urls import reverse

from apps.recordings.models import Recording
from tests.conftest import SignedClient, problem


@pytest.fixture
def bucket(s3):
    return boto3.client(
        "s3",
        endpoint_url=s3["S3_ENDPOINT_URL"],
        aws_access_key_id=s3["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3["S3_SECRET_ACCESS_KEY"],
        region_name=s3["S3_REGION"],
    )


@pytest.fixture
def receiver(live_server, livekit) -> str:
    livekit.webhook_url = live_server.url + "/v1/livekit/webhook"
    return livekit.webhook_url


def exists(bucket, key: str) -> bool:
    try:
        bucket.head_object(Bucket="recordings", Key=key)
        return True
    except ClientError:
        return False


def test_recording_whole_life(api: SignedClient, livekit, receiver, s3, bucket) -> None:
    livekit.add_participant("standup", "alice", tracks=["audio", "video"])
    started = api.post_json("/v1/rooms/standup/recording/start", {})
    assert started.status_code == 201, started.content
    recording = started.json()
    assert recording["recordingId"].startswith("rec_")
    key = recording["storageKey"]
    assert key.startswith("standup/")
    assert key.endswith(".mp4")

    egress_request = livekit.egress_requests[recording["egressId"]]
    output = egress_request.file_outputs[0]
    assert output.filepath == key
    assert output.s3.bucket == "recordings"
    assert output.s3.endpoint == s3["S3_ENDPOINT_URL"]
    assert livekit.calls_to("StartRoomCompositeEgress")[0].claims.video.room_record is True

    again = api.post_json("/v1/rooms/standup/recording/start", {})
    assert again.status_code == 200
    assert again.json()["status"] == "already_recording"
    assert again.json()["recordingId"] == recording["recordingId"]

    livekit.egress_started(recording["egressId"])
    status = api.send("GET", "/v1/rooms/standup/recording").json()
    assert status["isRecording"] is True
    assert status["recordingId"] == recording["recordingId"]
    assert status["egressId"] == recording["egressId"]
    assert Recording.objects.get().status == "recording"

    stopped = api.send("POST", "/v1/rooms/standup/recording/stop")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "ending"

    media = b"\x00\x00\x00\x18ftypmp42 pretend video bytes" * 100
    bucket.put_object(Bucket="recordings", Key=key, Body=media)  # what egress uploads
    livekit.finish_egress(recording["egressId"], size=len(media), duration_ns=42_500_000_000)
    delivery = livekit.egress_ended(recording["egressId"])
    assert delivery.status == 200

    done = api.send("GET", f"/v1/recordings/{recording['recordingId']}").json()
    assert done["status"] == "completed"
    assert done["size"] == len(media)
    assert done["duration"] == pytest.approx(42.5)
    assert done["storageKey"] == key
    assert api.send("GET", "/v1/rooms/standup/recording").json()["isRecording"] is False
    downloaded = requests.get(done["downloadUrl"], timeout=10)
    assert downloaded.status_code == 200
    assert downloaded.content == media
    assert "X-Amz-Expires=900" in done["downloadUrl"]

    deleted = api.send("DELETE", f"/v1/recordings/{recording['recordingId']}")
    assert deleted.status_code == 200
    assert not exists(bucket, key)
    assert api.send("GET", f"/v1/recordings/{recording['recordingId']}").status_code == 404


def test_failed_egress_records_the_error(api: SignedClient, livekit, receiver, s3) -> None:
    livekit.add_participant("standup", "alice")
    recording = api.post_json("/v1/rooms/standup/recording/start", {"audioOnly": True}).json()
    assert recording["storageKey"].endswith(".ogg")
    assert livekit.egress_requests[recording["egressId"]].audio_only is True
    livekit.fail_egress(recording["egressId"], "pipeline crashed")
    livekit.egress_ended(recording["egressId"])
    failed = api.send("GET", f"/v1/recordings/{recording['recordingId']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == "pipeline crashed"
    assert failed["downloadUrl"] is None


def test_stop_without_recording_is_404(api: SignedClient, livekit) -> None:
    response = api.send("POST", "/v1/rooms/standup/recording/stop")
    assert response.status_code == 404
    assert "no active recording" in problem(response)["detail"]


def test_start_in_unknown_room_is_404(api: SignedClient, livekit, s3) -> None:
    assert api.post_json("/v1/rooms/ghost/recording/start", {}).status_code == 404
    assert not Recording.objects.exists()


def test_cannot_delete_a_recording_in_progress(api: SignedClient, livekit, s3) -> None:
    livekit.add_participant("standup", "alice")
    recording = api.post_json("/v1/rooms/standup/recording/start", {}).json()
    assert api.send("DELETE", f"/v1/recordings/{recording['recordingId']}").status_code == 409


def test_upload_to_s3_and_download(api: SignedClient, s3, bucket) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    media = b"RIFF....WAVEfmt fake audio" * 50
    response = api.post_multipart(
        "/v1/recordings", {"roomId": "standup", "file": SimpleUploadedFile("call.wav", media)}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "upload"
    assert body["size"] == len(media)
    assert exists(bucket, body["storageKey"])
    assert requests.get(body["downloadUrl"], timeout=10).content == media


def test_upload_to_local_storage_and_download(api: SignedClient, settings, tmp_path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    settings.S3_BUCKET = ""
    media = b"local bytes" * 10
    body = api.post_multipart("/v1/recordings", {"file": SimpleUploadedFile("a.ogg", media)}).json()
    assert (tmp_path / body["storageKey"]).read_bytes() == media
    link = body["downloadUrl"]
    assert "/recordings/download/" in link
    downloaded = api.client.get(link.split("testserver", 1)[-1])
    assert downloaded.status_code == 200
    assert b"".join(downloaded.streaming_content) == media
    assert api.client.get("/recordings/download/forged-token").status_code == 404


def test_register_existing_object(api: SignedClient, s3, bucket) -> None:
    bucket.put_object(Bucket="recordings", Key="imported/old.mp4", Body=b"x" * 1234)
    response = api.post_json("/v1/recordings", {"storageKey": "imported/old.mp4", "roomId": "old", "duration": 60})
    assert response.status_code == 201, response.content
    assert response.json()["size"] == 1234
    assert response.json()["source"] == "registered"
    missing = api.post_json("/v1/recordings", {"storageKey": "imported/missing.mp4"})
    assert missing.status_code == 400
    neither = api.post_json("/v1/recordings", {"roomId": "x"})
    assert neither.status_code == 400


def test_list_filters_and_pagination(api: SignedClient, s3, bucket) -> None:
    for room, key in (("a", "a/1.mp4"), ("a", "a/2.mp4"), ("b", "b/1.mp4")):
        bucket.put_object(Bucket="recordings", Key=key, Body=b"1")
        api.post_json("/v1/recordings", {"storageKey": key, "roomId": room})
    assert api.send("GET", "/v1/recordings").json()["total"] == 3
    only_a = api.send("GET", "/v1/recordings?roomId=a&limit=1").json()
    assert only_a["total"] == 2
    assert len(only_a["recordings"]) == 1
    assert api.send("GET", "/v1/recordings?status=bogus").status_code == 400


def test_storage_unreachable_is_503(api: SignedClient, s3, settings) -> None:
    from rtcstack_site.env import s3_storage

    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": s3_storage(bucket="recordings", endpoint_url="http://127.0.0.1:1", access_key="a",
                                 secret_key="b", region="us-east-1", url_ttl=60),
    }  # fmt: skip
    response = api.post_json("/v1/recordings", {"storageKey": "x.mp4"})
    assert response.status_code == 503
    assert "S3_ENDPOINT_URL" in problem(response)["detail"]


def test_recordings_need_the_recordings_scope(make_key) -> None:
    client = SignedClient(make_key(scopes=("rooms",)))
    assert client.send("GET", "/v1/recordings").status_code == 403
    assert client.post_json("/v1/rooms/x/recording/start", {}).status_code == 403


def test_admin_lists_and_links_recordings(api: SignedClient, s3, bucket, admin_client) -> None:
    bucket.put_object(Bucket="recordings", Key="r/1.mp4", Body=b"1")
    recording_id = api.post_json("/v1/recordings", {"storageKey": "r/1.mp4", "roomId": "r"}).json()["recordingId"]
    page = admin_client.get("/admin/recordings/recording/", {"status__exact": "completed"}).content.decode()
    assert recording_id in page
    assert "X-Amz-Signature" in page
    # quote() the id the way the admin's own links do ("_24" would otherwise be read as "$").
    delete_url = reverse("admin:recordings_recording_delete", args=[quote(recording_id)])
    deleted = admin_client.post(delete_url, {"post": "yes"}, follow=True)
    assert not Recording.objects.exists(), [str(m) for m in deleted.context["messages"]]
    assert not exists(bucket, "r/1.mp4")
