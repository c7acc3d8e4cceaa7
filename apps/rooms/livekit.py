"""Everything RTCstack says to LiveKit goes through here: access tokens now, the server API later."""

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson
from django.conf import settings
from livekit import api

from apps.core.problems import ServiceUnavailable


class Role(StrEnum):
    HOST = "host"
    MODERATOR = "moderator"
    PARTICIPANT = "participant"
    VIEWER = "viewer"


_SPEAKER = {"room_join": True, "can_publish": True, "can_subscribe": True, "can_publish_data": True}
ROLE_GRANTS: dict[Role, dict[str, bool]] = {
    Role.HOST: {**_SPEAKER, "room_admin": True, "room_record": True},
    Role.MODERATOR: _SPEAKER,
    Role.PARTICIPANT: _SPEAKER,
    Role.VIEWER: {"room_join": True, "can_publish": False, "can_subscribe": True, "can_publish_data": False},
}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    url: str
    expires_at: datetime

    def as_json(self) -> dict[str, str]:
        return {
            "token": self.token,
            "url": self.url,
            "expiresAt": self.expires_at.isoformat().replace("+00:00", "Z"),
        }


def _credentials() -> tuple[str, str]:
    if not (settings.LIVEKIT_API_KEY and settings.LIVEKIT_API_SECRET):
        raise ServiceUnavailable(
            "LiveKit is not configured: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET.", kind="livekit-not-configured"
        )
    return settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET


def _expiry(jwt: str) -> datetime:
    """Read `exp` back from the token livekit-api built, so expiresAt matches it to the second."""
    payload = jwt.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return datetime.fromtimestamp(claims["exp"], tz=UTC)


def mint_token(
    *, room_id: str, user_id: str, role: Role, name: str = "", metadata: str = "", ttl: int | None = None
) -> IssuedToken:
    """A join token for one room; the requested ttl is capped by TOKEN_TTL_SECONDS."""
    key, secret = _credentials()
    seconds = min(ttl or settings.TOKEN_TTL_SECONDS, settings.TOKEN_TTL_SECONDS)
    token = (
        api.AccessToken(key, secret)
        .with_identity(user_id)
        .with_name(name)
        .with_metadata(metadata)
        .with_ttl(timedelta(seconds=seconds))
        .with_grants(api.VideoGrants(room=room_id, **ROLE_GRANTS[role]))
        .to_jwt()
    )
    return IssuedToken(token=token, url=settings.LIVEKIT_PUBLIC_URL, expires_at=_expiry(token))
