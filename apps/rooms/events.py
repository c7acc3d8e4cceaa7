"""Applies LiveKit's webhook events to RTCstack's records, once each."""

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Model
from django.db.models.functions import Greatest
from django.utils import timezone
from livekit import api

from apps.core.problems import Problem

from .models import LiveKitEvent, ParticipantSession, Room, RoomSession
from .serializers import MAX_ROOM_COUNT
from .signals import egress_event, livekit_event_strings, room_event

logger = logging.getLogger(__name__)


class InvalidEvent(Problem):
    """A verified event RTCstack cannot store. A 400: LiveKit retries only on 5xx, so a poison event stops."""

    status_code = 400
    kind = "invalid-livekit-event"
    title = "Invalid LiveKit event"


def _refuse(detail: str) -> InvalidEvent:
    logger.warning("Refused a LiveKit webhook event: %s", detail)
    return InvalidEvent(detail)


def _datetime(seconds: int, name: str) -> datetime | None:
    """LiveKit's Unix seconds (0: not set) as a datetime; a time outside the calendar makes the event invalid."""
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise _refuse(f"{name} is not a Unix time in seconds.") from error


def _when(event: api.WebhookEvent) -> datetime:
    return _datetime(event.created_at, "createdAt") or timezone.now()


def _max_length(model: type[Model], field: str) -> int:
    return model._meta.get_field(field).max_length


def _stored_strings(event: api.WebhookEvent) -> Iterator[tuple[str, str, int | None]]:
    """The strings of `event` that RTCstack stores or looks up: name in LiveKit's JSON, value, column size.

    Rooms' own, then those of the apps connected to `livekit_event_strings`.
    """
    yield "id", event.id, _max_length(LiveKitEvent, "event_id")
    yield "event", event.event, _max_length(LiveKitEvent, "event")
    yield "room.name", event.room.name, _max_length(Room, "name")
    yield "room.sid", event.room.sid, _max_length(RoomSession, "sid")
    yield "participant.identity", event.participant.identity, _max_length(ParticipantSession, "identity")
    yield "participant.name", event.participant.name, _max_length(ParticipantSession, "name")
    yield "participant.sid", event.participant.sid, _max_length(ParticipantSession, "sid")
    for _, strings in livekit_event_strings.send(sender=LiveKitEvent, event=event):
        yield from strings


def validate(event: api.WebhookEvent) -> None:
    """Refuse, before anything is stored, an event with a value no column holds (PostgreSQL takes no NUL)."""
    for name, value, max_length in _stored_strings(event):
        if "\x00" in value:
            raise _refuse(f"{name} contains a NUL character.")
        if max_length is not None and len(value) > max_length:
            raise _refuse(f"{name} is longer than {max_length} characters.")
    if event.room.num_participants > MAX_ROOM_COUNT:
        raise _refuse(f"room.numParticipants is more than {MAX_ROOM_COUNT}.")
    _datetime(event.created_at, "createdAt")
    _datetime(event.participant.joined_at, "participant.joinedAt")


def _session(event: api.WebhookEvent) -> RoomSession:
    """The session a room event belongs to, created on first sight (events can arrive out of order)."""
    room, _ = Room.objects.get_or_create(
        name=event.room.name, defaults={"sid": event.room.sid, "origin": Room.Origin.WEBHOOK}
    )
    session, _ = RoomSession.objects.get_or_create(
        sid=event.room.sid or f"unknown-{room.pk}", defaults={"room": room, "started_at": _when(event)}
    )
    return session


def _emit(event_type: str, data: dict[str, Any]) -> None:
    room_event.send(sender=LiveKitEvent, event_type=event_type, data=data)


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
    _emit("room_started", {"roomId": event.room.name, "sid": session.sid, "startedAt": session.started_at})


def room_finished(event: api.WebhookEvent) -> None:
    session = _session(event)
    ended = _when(event)
    RoomSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=ended)
    session.participants.filter(left_at__isnull=True).update(left_at=ended)
    Room.objects.filter(pk=session.room_id).update(closed_at=ended)
    session.refresh_from_db()
    _emit(
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
    joined = _datetime(event.participant.joined_at, "participant.joinedAt") or _when(event)
    ParticipantSession.objects.get_or_create(
        session=session,
        sid=event.participant.sid,
        defaults={"identity": event.participant.identity, "name": event.participant.name, "joined_at": joined},
    )
    present = session.participants.filter(left_at__isnull=True).count()
    RoomSession.objects.filter(pk=session.pk).update(
        peak_participants=Greatest(F("peak_participants"), max(present, event.room.num_participants))
    )
    _emit("participant_joined", {**_participant_data(event), "joinedAt": joined})


def participant_left(event: api.WebhookEvent) -> None:
    session = _session(event)
    session.participants.filter(sid=event.participant.sid, left_at__isnull=True).update(left_at=_when(event))
    _emit("participant_left", {**_participant_data(event), "leftAt": _when(event)})


def egress_changed(event: api.WebhookEvent) -> None:
    egress_event.send(sender=LiveKitEvent, event=event)


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
    validate(event)
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
