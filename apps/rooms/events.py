"""Applies LiveKit's webhook events to RTCstack's records, once each."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from livekit import api

from apps.recordings import services as recordings
from apps.recordings.models import Recording
from apps.transcription import services as transcription
from apps.webhooks.services import emit

from .models import LiveKitEvent, ParticipantSession, Room, RoomSession

logger = logging.getLogger(__name__)


def _when(event: api.WebhookEvent) -> datetime:
    return datetime.fromtimestamp(event.created_at, tz=UTC) if event.created_at else timezone.now()


def _session(event: api.WebhookEvent) -> RoomSession:
    """The session a room event belongs to, created on first sight (events can arrive out of order)."""
    room, _ = Room.objects.get_or_create(
        name=event.room.name, defaults={"sid": event.room.sid, "origin": Room.Origin.WEBHOOK}
    )
    session, _ = RoomSession.objects.get_or_create(
        sid=event.room.sid or f"unknown-{room.pk}", defaults={"room": room, "started_at": _when(event)}
    )
    return session


def _participant_data(event: api.WebhookEvent) -> dict:
    return {
        "roomId": event.room.name,
        "participantId": event.participant.identity,
        "name": event.participant.name,
        "sid": event.participant.sid,
    }


def room_started(event: api.WebhookEvent) -> None:
    session = _session(event)
    Room.objects.filter(pk=session.room_id).update(sid=session.sid, closed_at=None)
    emit("room_started", {"roomId": event.room.name, "sid": session.sid, "startedAt": session.started_at})


def room_finished(event: api.WebhookEvent) -> None:
    session = _session(event)
    ended = _when(event)
    RoomSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=ended)
    session.participants.filter(left_at__isnull=True).update(left_at=ended)
    Room.objects.filter(pk=session.room_id).update(closed_at=ended)
    session.refresh_from_db()
    emit(
        "room_finished",
        {
            "roomId": event.room.name,
            "sid": session.sid,
            "startedAt": session.started_at,
            "endedAt": session.ended_at,
            "durationSeconds": int(session.duration.total_seconds()) if session.duration else None,
            "peakParticipants": session.peak_participants,
        },
    )


def participant_joined(event: api.WebhookEvent) -> None:
    session = _session(event)
    joined = (
        datetime.fromtimestamp(event.participant.joined_at, tz=UTC) if event.participant.joined_at else _when(event)
    )
    ParticipantSession.objects.get_or_create(
        session=session,
        sid=event.participant.sid,
        defaults={"identity": event.participant.identity, "name": event.participant.name, "joined_at": joined},
    )
    present = session.participants.filter(left_at__isnull=True).count()
    RoomSession.objects.filter(pk=session.pk).update(
        peak_participants=Greatest(F("peak_participants"), max(present, event.room.num_participants))
    )
    emit("participant_joined", {**_participant_data(event), "joinedAt": joined})


def participant_left(event: api.WebhookEvent) -> None:
    session = _session(event)
    session.participants.filter(sid=event.participant.sid, left_at__isnull=True).update(left_at=_when(event))
    emit("participant_left", {**_participant_data(event), "leftAt": _when(event)})


def egress_changed(event: api.WebhookEvent) -> None:
    recording = recordings.apply_egress(event.egress_info)
    if recording is None:
        return
    if event.event == "egress_started":
        emit("recording_started", recordings.recording_json(recording))
    elif event.event == "egress_ended":
        emit("recording_finished", recordings.recording_json(recording))
        if recording.status == Recording.Status.COMPLETED and transcription.should_auto_transcribe(recording):
            transcription.queue_post_call(recording)


HANDLERS: dict[str, Callable[[api.WebhookEvent], None]] = {
    "room_started": room_started,
    "room_finished": room_finished,
    "participant_joined": participant_joined,
    "participant_left": participant_left,
    "egress_started": egress_changed,
    "egress_updated": egress_changed,
    "egress_ended": egress_changed,
}


@transaction.atomic
def apply(event: api.WebhookEvent) -> bool:
    """Apply one event; False when its id was seen before (LiveKit retries deliveries)."""
    _, first_time = LiveKitEvent.objects.get_or_create(
        event_id=event.id, defaults={"event": event.event, "room_name": event.room.name}
    )
    if not first_time:
        return False
    handler = HANDLERS.get(event.event)
    if handler is None:
        logger.debug("LiveKit event %s needs no action", event.event)
    else:
        handler(event)
    return True
