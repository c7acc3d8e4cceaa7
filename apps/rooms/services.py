"""Rooms, participants and ingress: LiveKit's server API as RTCstack's /v1 exposes it."""

from django.db.models import QuerySet
from django.utils import timezone
from livekit import api

from apps.core import livekit
from apps.core.problems import NotFound

from .models import Room, RoomSession


def create_room(
    name: str, *, max_participants: int | None = None, empty_timeout: int | None = None, metadata: str = ""
) -> api.Room:
    request = api.CreateRoomRequest(
        name=name, max_participants=max_participants or 0, empty_timeout=empty_timeout or 0, metadata=metadata
    )
    created = livekit.call(lambda lk: lk.room.create_room(request))
    Room.objects.update_or_create(
        name=name,
        defaults={
            "sid": created.sid,
            "max_participants": max_participants,
            "empty_timeout": empty_timeout,
            "metadata": metadata,
            "closed_at": None,
        },
        create_defaults={
            "sid": created.sid,
            "origin": Room.Origin.API,
            "max_participants": max_participants,
            "empty_timeout": empty_timeout,
            "metadata": metadata,
        },
    )
    return created


def list_rooms() -> list[api.Room]:
    return list(livekit.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest())).rooms)


def active_room(room_id: str) -> api.Room:
    found = livekit.call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=[room_id]))).rooms
    if not found:
        raise NotFound(_no_room(room_id))
    return found[0]


def recent_sessions(room_id: str, limit: int = 10) -> QuerySet[RoomSession]:
    return RoomSession.objects.filter(room__name=room_id)[:limit]


def close_room(room_id: str) -> None:
    livekit.call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=room_id)), not_found=_no_room(room_id))
    Room.objects.filter(name=room_id).update(closed_at=timezone.now())


def _no_room(room_id: str) -> str:
    return f"No active room {room_id!r} in LiveKit."


def list_participants(room_id: str) -> list[api.ParticipantInfo]:
    active_room(room_id)  # LiveKit lists an unknown room as empty; tell the caller it does not exist
    response = livekit.call(
        lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room_id)), not_found=_no_room(room_id)
    )
    return list(response.participants)


def remove_participant(room_id: str, identity: str) -> None:
    livekit.call(
        lambda lk: lk.room.remove_participant(api.RoomParticipantIdentity(room=room_id, identity=identity)),
        not_found=f"No participant {identity!r} in room {room_id!r}.",
    )


def mute_track(room_id: str, identity: str, track_sid: str, muted: bool) -> api.TrackInfo:
    # LiveKit answers "unavailable" after a timeout for an absent participant; ask first, answer 404 at once.
    participant = livekit.call(
        lambda lk: lk.room.get_participant(api.RoomParticipantIdentity(room=room_id, identity=identity)),
        not_found=f"No participant {identity!r} in room {room_id!r}.",
    )
    if not any(track.sid == track_sid for track in participant.tracks):
        raise NotFound(f"Participant {identity!r} has no track {track_sid!r}.")
    request = api.MuteRoomTrackRequest(room=room_id, identity=identity, track_sid=track_sid, muted=muted)
    response = livekit.call(
        lambda lk: lk.room.mute_published_track(request),
        not_found=f"No track {track_sid!r} of participant {identity!r} in room {room_id!r}.",
    )
    return response.track


INGRESS_INPUTS = {"rtmp": api.IngressInput.RTMP_INPUT, "whip": api.IngressInput.WHIP_INPUT}


def create_ingress(
    room_id: str, *, input_type: str, name: str, participant_identity: str, participant_name: str
) -> api.IngressInfo:
    request = api.CreateIngressRequest(
        input_type=INGRESS_INPUTS[input_type],
        name=name,
        room_name=room_id,
        participant_identity=participant_identity,
        participant_name=participant_name,
    )
    return livekit.call(lambda lk: lk.ingress.create_ingress(request))


def list_ingress(room_id: str) -> list[api.IngressInfo]:
    return list(livekit.call(lambda lk: lk.ingress.list_ingress(api.ListIngressRequest(room_name=room_id))).items)


def delete_ingress(room_id: str, ingress_id: str) -> None:
    """Scoped to the room in the URL: LiveKit deletes ingresses by id alone, whatever room they feed."""
    if not any(item.ingress_id == ingress_id for item in list_ingress(room_id)):
        raise NotFound(f"No ingress {ingress_id!r} in room {room_id!r}.")
    livekit.call(
        lambda lk: lk.ingress.delete_ingress(api.DeleteIngressRequest(ingress_id=ingress_id)),
        not_found=f"No ingress {ingress_id!r} in room {room_id!r}.",
    )
