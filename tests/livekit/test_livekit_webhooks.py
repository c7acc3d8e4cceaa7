"""LiveKit → RTCstack webhooks, posted over HTTP by the stand-in exactly as livekit-server signs them."""

import pytest
import requests

from apps.rooms.models import LiveKitEvent, ParticipantSession, Room, RoomSession


@pytest.fixture
def receiver(live_server, livekit) -> str:
    livekit.webhook_url = live_server.url + "/v1/livekit/webhook"
    return livekit.webhook_url


def test_valid_webhook_is_applied(receiver, livekit) -> None:
    livekit.add_room("standup")
    delivery = livekit.room_started("standup")
    assert delivery.status == 200, delivery.response_body
    session = RoomSession.objects.get()
    assert session.room.name == "standup"
    assert session.room.origin == Room.Origin.WEBHOOK
    assert session.sid == livekit.get_room("standup").sid


@pytest.mark.parametrize("how", ["forged", "unsigned", "garbage"])
def test_unverifiable_webhooks_are_refused(receiver, livekit, how: str) -> None:
    livekit.add_room("standup")
    options = {
        "forged": {"api_secret": "an-attackers-secret-0123456789abcdef"},
        "unsigned": {"authorization": ""},
        "garbage": {"authorization": "not-a-jwt"},
    }[how]
    delivery = livekit.room_started("standup", **options)
    assert delivery.status == 401
    assert b"invalid-webhook" in delivery.response_body
    assert not RoomSession.objects.exists()
    assert not LiveKitEvent.objects.exists()


def test_tampered_body_is_refused(receiver, livekit) -> None:
    livekit.add_room("standup")
    good = livekit.room_started("standup")
    tampered = good.body.replace("standup", "hijacked").encode()
    response = requests.post(receiver, data=tampered, headers={"Authorization": good.authorization}, timeout=10)
    assert response.status_code == 401


def test_duplicate_event_is_applied_once(receiver, livekit) -> None:
    livekit.add_participant("standup", "alice", name="Alice")
    first = livekit.participant_joined("standup", "alice")
    again = livekit.resend_webhook(first)
    assert first.status == again.status == 200
    assert b'"duplicate":false' in first.response_body
    assert b'"duplicate":true' in again.response_body
    assert ParticipantSession.objects.count() == 1
    assert LiveKitEvent.objects.count() == 1


def test_session_history(receiver, livekit) -> None:
    livekit.add_room("standup")
    livekit.room_started("standup")
    livekit.add_participant("standup", "alice", name="Alice")
    livekit.participant_joined("standup", "alice")
    livekit.add_participant("standup", "bob", name="Bob")
    livekit.participant_joined("standup", "bob")
    livekit.remove_participant("standup", "bob")
    livekit.participant_left("standup", "bob")
    livekit.room_finished("standup")

    session = RoomSession.objects.get()
    assert session.peak_participants == 2
    assert session.ended_at is not None
    assert session.duration is not None
    people = {p.identity: p for p in session.participants.all()}
    assert set(people) == {"alice", "bob"}
    assert people["alice"].name == "Alice"
    assert all(p.left_at is not None for p in people.values())  # the room's end closes everyone's presence
    assert Room.objects.get(name="standup").closed_at is not None


def test_events_arriving_before_room_started_still_build_history(receiver, livekit) -> None:
    livekit.add_participant("late", "carol")
    livekit.participant_joined("late", "carol")
    livekit.room_started("late")
    assert RoomSession.objects.count() == 1
    assert ParticipantSession.objects.get().identity == "carol"


def test_admin_shows_session_history(receiver, livekit, admin_client) -> None:
    livekit.add_participant("standup", "alice", name="Alice")
    livekit.room_started("standup")
    livekit.participant_joined("standup", "alice")
    room = Room.objects.get(name="standup")
    page = admin_client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()
    assert "ongoing" in page
    session = RoomSession.objects.get()
    assert "alice" in admin_client.get(f"/admin/rooms/roomsession/{session.pk}/change/").content.decode()
    listing = admin_client.get("/admin/rooms/room/", {"origin__exact": "webhook"}).content.decode()
    assert "standup" in listing


def test_livekit_events_become_outgoing_webhooks(receiver, livekit, s3, api) -> None:
    from apps.webhooks import services as webhooks
    from apps.webhooks.models import WebhookDelivery

    webhooks.create_endpoint(url="https://hooks.example.com/rtc", events=["*"], description="all")
    livekit.add_participant("standup", "alice", name="Alice")
    livekit.room_started("standup")
    livekit.participant_joined("standup", "alice")
    recording = api.post_json("/v1/rooms/standup/recording/start", {}).json()
    livekit.egress_started(recording["egressId"])
    livekit.finish_egress(recording["egressId"])
    livekit.egress_ended(recording["egressId"])
    livekit.remove_participant("standup", "alice")
    livekit.participant_left("standup", "alice")
    livekit.room_finished("standup")
    events = list(WebhookDelivery.objects.order_by("created_at").values_list("event", flat=True))
    assert events == [
        "room_started", "participant_joined", "recording_started", "recording_finished", "participant_left",
        "room_finished",
    ]  # fmt: skip
    finished = WebhookDelivery.objects.get(event="recording_finished")
    assert '"recordingId":"' + recording["recordingId"] + '"' in finished.body
