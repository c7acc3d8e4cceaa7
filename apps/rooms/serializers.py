from typing import Any

import orjson
from rest_framework import serializers

from apps.core.serializers import InputSerializer

from .livekit import Role

MAX_METADATA_BYTES = 64 * 1024


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
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        if len(text.encode()) > MAX_METADATA_BYTES:
            raise serializers.ValidationError(f"Metadata may be at most {MAX_METADATA_BYTES} bytes.")
        return text

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
