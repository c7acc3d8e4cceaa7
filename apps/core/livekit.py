"""Everything RTCstack says to LiveKit goes through here: access tokens and the one server-API client."""

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

import aiohttp
import orjson
from asgiref.sync import async_to_sync
from django.conf import settings
from livekit import api

from .problems import Conflict, NotFound, Problem, ServiceUnavailable, Unauthorized

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


class UpstreamError(Problem):
    status_code = 502
    kind = "livekit-error"
    title = "LiveKit error"


def _server_url() -> str:
    if not settings.LIVEKIT_URL:
        raise ServiceUnavailable(
            "LiveKit is not configured: set LIVEKIT_URL to the LiveKit server's URL.", kind="livekit-not-configured"
        )
    return settings.LIVEKIT_URL


def _problem_for(error: api.TwirpError, not_found: str) -> Problem:
    match error.code:
        case "not_found":
            return NotFound(not_found)
        case "invalid_argument" | "malformed" | "out_of_range":
            return Problem(
                f"LiveKit rejected the request: {error.message}",
                kind="invalid-request",
                title="Invalid request",
                status=400,
            )
        case "already_exists" | "failed_precondition":
            return Conflict(f"LiveKit refused: {error.message}")
    if error.status == 401 or error.code in ("unauthenticated", "permission_denied"):
        # LiveKit rejects a bad token before Twirp runs: plain-text 401, which livekit-api reports as "unknown".
        return UpstreamError("LiveKit refused RTCstack's credentials; check LIVEKIT_API_KEY and LIVEKIT_API_SECRET.")
    if error.code in ("unavailable", "resource_exhausted"):
        return ServiceUnavailable(f"LiveKit is unavailable: {error.message}", kind="livekit-unavailable")
    return UpstreamError(f"LiveKit answered with an error ({error.code}): {error.message}")


def call(operation: Callable[[api.LiveKitAPI], Awaitable[T]], *, not_found: str = "Not found in LiveKit.") -> T:
    """Run one LiveKit server-API call from sync code; every failure becomes a problem, never a 500.

    The one LiveKit client factory: each call opens a short-lived `LiveKitAPI` with the configured
    URL, credentials and timeout (failover is for LiveKit Cloud only, so it is off).
    """
    url = _server_url()
    key, secret = _credentials()

    async def run() -> T:
        # livekit-api passes timeout=None per request, which disables the session's timeout: bound it here.
        async with asyncio.timeout(settings.LIVEKIT_TIMEOUT_SECONDS):
            async with api.LiveKitAPI(url, key, secret, failover=False) as client:
                return await operation(client)

    try:
        return async_to_sync(run)()
    except api.TwirpError as error:
        raise _problem_for(error, not_found) from error
    except TimeoutError as error:
        logger.warning("LiveKit timed out after %s s", settings.LIVEKIT_TIMEOUT_SECONDS)
        raise ServiceUnavailable(
            f"LiveKit did not answer within {settings.LIVEKIT_TIMEOUT_SECONDS} s.", kind="livekit-unavailable"
        ) from error
    except aiohttp.ClientError as error:
        logger.warning("LiveKit unreachable: %s", error.__class__.__name__)
        raise ServiceUnavailable(
            "LiveKit is unreachable; check LIVEKIT_URL and that the server is running.", kind="livekit-unavailable"
        ) from error


def verify_webhook(body: bytes, authorization: str) -> api.WebhookEvent:
    """A LiveKit webhook, verified with livekit-api's receiver (signed JWT carrying the body's SHA-256)."""
    key, secret = _credentials()
    if not authorization:
        raise Unauthorized("Missing Authorization header: LiveKit signs every webhook.", kind="invalid-webhook")
    try:
        return api.WebhookReceiver(api.TokenVerifier(key, secret)).receive(body.decode(), authorization)
    except Exception as exc:  # the receiver raises bare Exceptions for every kind of forgery
        logger.warning("Refused a LiveKit webhook: %s", exc.__class__.__name__)
        raise Unauthorized("The webhook's signature does not verify.", kind="invalid-webhook") from exc
