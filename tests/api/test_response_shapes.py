"""One source per response shape: the schema check of every /v1 response is on, the published schema is the one
it checks against, and a live segment looks the same in the live API, the dashboard's events and the admin export."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client
from django.utils import timezone

from apps.core import health
from apps.core.problems import Conflict
from apps.dashboard.events import segments_stored
from apps.rooms import views as room_views
from apps.transcription import live
from apps.transcription.models import Transcription
from speech.livestore import SegmentEntry
from tests.conftest import SignedClient
from tests.schema_validation import ResponseSchemaMismatchError, published_schema, strict
from tests.support.dashboard import connect, segment_entry, session_cookie

TOKEN_REQUEST = {"roomId": "standup", "userId": "alice", "role": "participant"}


@pytest.mark.django_db
def test_a_body_the_schema_does_not_allow_fails_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "report", lambda: ({"status": "fine", "checks": {}, "capabilities": {}}, True))
    with pytest.raises(ResponseSchemaMismatchError) as caught:
        Client().get("/v1/health")
    message = str(caught.value)
    assert "GET /v1/health (v1_health_retrieve): status 200 (application/json)" in message
    assert "'fine' is not one of ['ok', 'degraded', 'error']" in message


def test_an_undocumented_field_fails_the_request(api: SignedClient, monkeypatch: pytest.MonkeyPatch) -> None:
    render = room_views.render_token
    monkeypatch.setattr(room_views, "render_token", lambda token: {**render(token), "extra": 1})
    with pytest.raises(ResponseSchemaMismatchError, match=r"POST /v1/token .*status 200.*'extra' was unexpected"):
        api.post_json("/v1/token", TOKEN_REQUEST)


def test_an_undeclared_status_fails_the_request(api: SignedClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: Any) -> None:
        raise Conflict("Not now.")

    monkeypatch.setattr(room_views, "mint_token", refuse)
    with pytest.raises(ResponseSchemaMismatchError, match=r"POST /v1/token \(v1_token_create\): status 409 is not"):
        api.post_json("/v1/token", TOKEN_REQUEST)


def test_a_declared_response_passes(api: SignedClient) -> None:
    assert api.post_json("/v1/token", TOKEN_REQUEST).status_code == 200
    assert api.post_json("/v1/token", {}).status_code == 400
    assert api.send("GET", "/v1/no-such-endpoint").status_code == 404


@pytest.mark.django_db
def test_the_check_uses_the_schema_the_api_publishes() -> None:
    served = Client().get("/v1/schema?format=json").json()
    assert strict(served) == published_schema()


@pytest.mark.django_db(transaction=True)
def test_a_stored_segment_is_the_same_object_in_the_live_api_the_dashboard_and_the_admin_export(
    api: SignedClient, admin_client: Client
) -> None:
    transcription = Transcription.objects.create(
        kind="live", status="active", room_name="standup", started_at=timezone.now(), speakers={"alice": "Alice"}
    )
    anonymous = SegmentEntry(transcription.id, "unknown-1", "", "", 1000, 1900, "Who said that?")
    live.store_entries([segment_entry(transcription, 0), anonymous])
    segments = list(transcription.segments.all())

    from_api = api.send("GET", "/v1/rooms/standup/transcription").json()["segments"]
    assert [s["text"] for s in from_api] == ["Line 0.", "Who said that?"]
    assert from_api[0]["speaker"] == "Alice"
    assert "speakerId" not in from_api[1]

    cookie = session_cookie(support_staff=True)

    async def dashboard() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        communicator = connect("/ws/dashboard/rooms/standup/", cookie)
        assert (await communicator.connect())[0]
        backlog = await communicator.receive_json_from(timeout=3)
        await sync_to_async(segments_stored)(Transcription, transcription=transcription, segments=segments)
        pushed = []
        async with asyncio.timeout(5):
            while len(pushed) < len(segments):
                message = await communicator.receive_json_from(timeout=5)
                if message["type"] == "segment":
                    pushed.append(message["segment"])
        await communicator.disconnect()
        return backlog["segments"], pushed

    backlog, pushed = async_to_sync(dashboard)()
    assert backlog == pushed
    assert [s.pop("segmentId") for s in pushed] == ["alice-0", "unknown-1"]
    assert pushed == from_api

    exported = admin_client.post(
        "/admin/transcription/transcription/", {"action": "export_srt", "_selected_action": [transcription.id]}
    )
    srt = api.send("GET", "/v1/rooms/standup/transcription?format=srt")
    assert exported.content.decode().strip() == srt.content.decode().strip()
    assert "Alice: Line 0." in srt.content.decode()
