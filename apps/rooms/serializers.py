from typing import Any

import orjson
from drf_spectacular.utils import extend_schema_field
from livekit import api
from rest_framework import serializers

from apps.core.livekit import Role
from apps.core.serializers import InputSerializer, UnixSecondsField, UtcDateTimeField

from .models import RoomSession
from .services import recent_sessions

MAX_METADATA_BYTES = 64 * 1024
# Room limits and counts are uint32 in LiveKit's protobuf, but RTCstack keeps them in PostgreSQL integer columns
# (PositiveIntegerField), which stop lower: a larger value would be created in LiveKit and then fail to save.
MAX_ROOM_COUNT = 2**31 - 1


def metadata_as_text(value: Any) -> str:
    """LiveKit metadata is a string: JSON values are sent as their JSON text, strings as they are."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if "\x00" in text:  # only a string can hold one (JSON text escapes it); no PostgreSQL text column can
        raise serializers.ValidationError("Metadata may not contain NUL characters.")
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"Metadata may be at most {MAX_METADATA_BYTES} bytes.")
    return text


class TokenRequestSerializer(InputSerializer):
    roomId = serializers.CharField(max_length=256)
    userId = serializers.CharField(max_length=256)
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    displayName = serializers.CharField(
        max_length=256, required=False, allow_blank=True, help_text="Alias of name, accepted for older clients."
    )
    role = serializers.ChoiceField(choices=[r.value for r in Role])
    metadata = serializers.JSONField(required=False, help_text="A JSON value or a string; sent to LiveKit as a string.")
    ttl = serializers.IntegerField(
        required=False, min_value=1, help_text="Seconds; capped by the server's TOKEN_TTL_SECONDS."
    )

    def validate_metadata(self, value: Any) -> str:
        return metadata_as_text(value)

    def to_token_args(self) -> dict[str, Any]:
        data = self.validated_data
        return {
            "room_id": data["roomId"],
            "user_id": data["userId"],
            "role": Role(data["role"]),
            "name": data.get("name") or data.get("displayName") or "",
            "metadata": data.get("metadata", ""),
            "ttl": data.get("ttl"),
        }


class CreateRoomSerializer(InputSerializer):
    name = serializers.CharField(max_length=256)
    maxParticipants = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ROOM_COUNT)
    emptyTimeout = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ROOM_COUNT, help_text="Seconds before an empty room closes."
    )
    metadata = serializers.JSONField(required=False)

    def validate_metadata(self, value: Any) -> str:
        return metadata_as_text(value)


class MuteSerializer(InputSerializer):
    trackSid = serializers.CharField(max_length=64)
    muted = serializers.BooleanField(default=True)


class CreateIngressSerializer(InputSerializer):
    type = serializers.ChoiceField(choices=["rtmp", "whip"], default="rtmp")
    name = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    participantId = serializers.CharField(
        max_length=256, required=False, default="ingress", help_text="Identity the stream appears under in the room."
    )
    participantName = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")


# Response shapes: each serializer renders its domain object (a LiveKit message or a model) and is the schema of
# that shape (docstrings are published).
class TokenResponseSerializer(serializers.Serializer):
    """A LiveKit access token and where to use it."""

    # The token view renders an IssuedToken with FlatRenderer: the endpoint is hot, a serializer instance is not cheap.

    token = serializers.CharField(help_text="LiveKit access token (JWT)")
    url = serializers.CharField(help_text="LiveKit WebSocket URL for clients")
    expiresAt = UtcDateTimeField(source="expires_at")


class ProtoEnumField(serializers.CharField):
    """A protobuf enum value as its lower-case name (`names`: the enum's values and names, see `names_of`)."""

    def __init__(self, names: dict[int, str], **kwargs: Any) -> None:
        self.names = names
        super().__init__(**kwargs)

    def to_representation(self, value: int) -> str:
        return self.names[value]


def names_of(enum: Any) -> dict[int, str]:
    """A plain dict, not the enum: DRF deep-copies field arguments, and protobuf enum descriptors do not copy."""
    return {number: name.lower() for name, number in enum.items()}


@extend_schema_field(serializers.ChoiceField(choices=list(names_of(api.TrackType).values())))
class TrackTypeField(ProtoEnumField):
    """Documented as its names: a track is audio, video or data."""


class TrackSerializer(serializers.Serializer):
    """A published track."""

    trackSid = serializers.CharField(source="sid")
    type = TrackTypeField(names_of(api.TrackType))
    source = ProtoEnumField(names_of(api.TrackSource))
    name = serializers.CharField()
    muted = serializers.BooleanField()


class ParticipantSerializer(serializers.Serializer):
    """A participant in a room."""

    participantId = serializers.CharField(
        source="identity", help_text="The participant's identity (the token's userId)."
    )
    sid = serializers.CharField()
    name = serializers.CharField()
    state = ProtoEnumField(names_of(api.ParticipantInfo.State))
    metadata = serializers.CharField()
    joinedAt = UnixSecondsField(source="joined_at")
    tracks = TrackSerializer(many=True)


class RoomSessionSerializer(serializers.Serializer):
    """One session of a room, from LiveKit's events."""

    sid = serializers.CharField()
    startedAt = UtcDateTimeField(source="started_at")
    endedAt = UtcDateTimeField(source="ended_at", allow_null=True)
    durationSeconds = serializers.SerializerMethodField(method_name="get_duration_seconds")
    peakParticipants = serializers.IntegerField(source="peak_participants")

    def get_duration_seconds(self, session: RoomSession) -> int | None:
        return int(session.duration.total_seconds()) if session.duration else None


class RoomSerializer(serializers.Serializer):
    """An active room."""

    roomId = serializers.CharField(source="name")
    sid = serializers.CharField()
    numParticipants = serializers.IntegerField(source="num_participants")
    numPublishers = serializers.IntegerField(source="num_publishers")
    maxParticipants = serializers.IntegerField(source="max_participants")
    emptyTimeout = serializers.IntegerField(source="empty_timeout")
    metadata = serializers.CharField()
    activeRecording = serializers.BooleanField(source="active_recording")
    createdAt = UnixSecondsField(source="creation_time")


class RoomDetailSerializer(RoomSerializer):
    """An active room and its recent sessions."""

    sessions = serializers.SerializerMethodField(help_text="The latest sessions, newest first.")

    @extend_schema_field(RoomSessionSerializer(many=True))
    def get_sessions(self, room: api.Room) -> list[dict[str, Any]]:
        return RoomSessionSerializer(recent_sessions(room.name), many=True).data


class IngressSerializer(serializers.Serializer):
    """An ingress feeding a room."""

    ingressId = serializers.CharField(source="ingress_id")
    roomId = serializers.CharField(source="room_name")
    type = serializers.SerializerMethodField()
    name = serializers.CharField()
    url = serializers.CharField(help_text="Where the encoder sends the stream.")
    streamKey = serializers.CharField(source="stream_key")
    participantId = serializers.CharField(source="participant_identity")
    participantName = serializers.CharField(source="participant_name")

    @extend_schema_field(serializers.ChoiceField(choices=["rtmp", "whip"]))
    def get_type(self, ingress: api.IngressInfo) -> str:
        return "whip" if ingress.input_type == api.IngressInput.WHIP_INPUT else "rtmp"


class MuteResultSerializer(serializers.Serializer):
    """The track as LiveKit left it."""

    roomId = serializers.CharField()
    participantId = serializers.CharField()
    track = TrackSerializer()


class RoomClosedSerializer(serializers.Serializer):
    roomId = serializers.CharField()
    closed = serializers.BooleanField()


class ParticipantRemovedSerializer(serializers.Serializer):
    roomId = serializers.CharField()
    participantId = serializers.CharField()
    removed = serializers.BooleanField()


class IngressDeletedSerializer(serializers.Serializer):
    roomId = serializers.CharField()
    ingressId = serializers.CharField()
    deleted = serializers.BooleanField()


class WebhookAckSerializer(serializers.Serializer):
    """The acknowledgement of one LiveKit webhook."""

    id = serializers.CharField()
    event = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="True when this event id was handled before.")
