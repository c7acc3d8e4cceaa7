from typing import Any

import orjson
from rest_framework import serializers

from apps.core.livekit import Role
from apps.core.serializers import InputSerializer

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


class TokenResponseSerializer(serializers.Serializer):
    """Documents the response of the token endpoints (built by IssuedToken.as_json)."""

    token = serializers.CharField(help_text="LiveKit access token (JWT)")
    url = serializers.CharField(help_text="LiveKit WebSocket URL for clients")
    expiresAt = serializers.DateTimeField()


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


# Response shapes, for the OpenAPI schema (the services build the JSON).
class TrackSerializer(serializers.Serializer):
    trackSid = serializers.CharField()
    type = serializers.ChoiceField(choices=["audio", "video", "data"])
    source = serializers.CharField()
    name = serializers.CharField()
    muted = serializers.BooleanField()


class ParticipantSerializer(serializers.Serializer):
    participantId = serializers.CharField(help_text="The participant's identity (the token's userId).")
    sid = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    metadata = serializers.CharField()
    joinedAt = serializers.DateTimeField(allow_null=True)
    tracks = TrackSerializer(many=True)


class RoomSessionSerializer(serializers.Serializer):
    sid = serializers.CharField()
    startedAt = serializers.DateTimeField()
    endedAt = serializers.DateTimeField(allow_null=True)
    durationSeconds = serializers.IntegerField(allow_null=True)
    peakParticipants = serializers.IntegerField()


class RoomSerializer(serializers.Serializer):
    roomId = serializers.CharField()
    sid = serializers.CharField()
    numParticipants = serializers.IntegerField()
    numPublishers = serializers.IntegerField()
    maxParticipants = serializers.IntegerField()
    emptyTimeout = serializers.IntegerField()
    metadata = serializers.CharField()
    activeRecording = serializers.BooleanField()
    createdAt = serializers.DateTimeField(allow_null=True)


class RoomDetailSerializer(RoomSerializer):
    sessions = RoomSessionSerializer(many=True, help_text="The latest sessions, newest first.")


class IngressSerializer(serializers.Serializer):
    ingressId = serializers.CharField()
    roomId = serializers.CharField()
    type = serializers.ChoiceField(choices=["rtmp", "whip"])
    name = serializers.CharField()
    url = serializers.CharField(help_text="Where the encoder sends the stream.")
    streamKey = serializers.CharField()
    participantId = serializers.CharField()
    participantName = serializers.CharField()


class MuteResultSerializer(serializers.Serializer):
    roomId = serializers.CharField()
    participantId = serializers.CharField()
    track = TrackSerializer()


class DoneSerializer(serializers.Serializer):
    """The acknowledgement of a delete or close: the ids acted on and a true flag."""

    roomId = serializers.CharField()


class WebhookAckSerializer(serializers.Serializer):
    id = serializers.CharField()
    event = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="True when this event id was handled before.")
