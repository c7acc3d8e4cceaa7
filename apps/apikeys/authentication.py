"""DRF authentication for HMAC-signed /v1 requests (SPEC §4)."""

import hmac
import logging
import re
import time

import redis
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.core.middleware import declared_length
from apps.core.problems import PayloadTooLarge, RateLimited, ServiceUnavailable, Unauthorized

from . import keystore
from .guard import Failures, Guard, Verdict, get_guard
from .models import ApiKey
from .signer import API_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature

logger = logging.getLogger(__name__)

SIGNATURE_FORMAT = re.compile(r"sha256=[0-9a-f]{64}")
META_NAMES = {
    header: "HTTP_" + header.upper().replace("-", "_")
    for header in (API_KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
}


class ApiClient:
    """The authenticated caller of a /v1 request: an app backend holding an API key."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: keystore.ResolvedKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return self.key.key_id


def _unauthorized(kind: str, detail: str) -> Unauthorized:
    return Unauthorized(detail, kind=kind)


def _header(request: Request, name: str) -> str:
    value = request.META.get(META_NAMES[name], "")
    if not value:
        raise _unauthorized("missing-credentials", f"Missing {name} header.")
    return value


def _signed_path(request: Request) -> str:
    """The path and query string exactly as the client sent them, when the server tells us."""
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    return raw if raw else request.get_full_path()


def _check_timestamp(raw: str) -> None:
    # ASCII digits only (str.isdigit() also takes "²" and other scripts' digits), and few enough for int():
    # 12 reach far past any clock skew, so a milliseconds timestamp or a 5,000-digit one is refused up front.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise _unauthorized("invalid-timestamp", f"{TIMESTAMP_HEADER} must be Unix time in whole seconds.")
    skew = int(raw) - int(time.time())
    max_age = settings.SIGNATURE_MAX_AGE_SECONDS
    if skew < -max_age:
        raise _unauthorized(
            "stale-timestamp", f"{TIMESTAMP_HEADER} is {-skew} s old; requests are accepted for {max_age} s."
        )
    if skew > max_age:
        raise _unauthorized(
            "future-timestamp", f"{TIMESTAMP_HEADER} is {skew} s in the future; check the caller's clock."
        )


def _raw_body(request: Request) -> bytes:
    try:
        return request._request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge("The request body is too large.") from exc


def _refuse_if_limited(failures: Failures, *, before_verifying: bool = False) -> None:
    """429 once a client address or a key id is past its allowance of failed verifications in this window.

    Before verifying, a client that has used up its allowance is refused; after a failure is counted, the failure
    that goes past it is. A limit of 0 turns that count off.
    """
    pending = 1 if before_verifying else 0
    per_address, per_key = settings.SIGNATURE_FAILURE_LIMIT_PER_IP, settings.SIGNATURE_FAILURE_LIMIT_PER_KEY
    if per_address and failures.address + pending > per_address:
        source = f"from this address (limit {per_address} a minute)"
    elif per_key and failures.key + pending > per_key:
        source = f"for this API key (limit {per_key} a minute)"
    else:
        return
    raise RateLimited(
        f"Too many failed signatures {source}; retry after {failures.window_resets_in} s.",
        headers={"Retry-After": str(failures.window_resets_in)},
    )


def _record_last_used(key: keystore.ResolvedKey) -> None:
    """Best effort: a request that needs no database must not fail because this bookkeeping could not be written."""
    try:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    except DatabaseError as exc:
        logger.warning("Could not record the last use of API key %s: %s", key.key_id, exc.__class__.__name__)


class SignedRequestAuthentication(BaseAuthentication):
    """Verifies X-Api-Key / X-RTCstack-Timestamp / X-RTCstack-Signature over method, path, time and body."""

    def authenticate(self, request: Request) -> tuple[ApiClient, keystore.ResolvedKey]:
        key_id = _header(request, API_KEY_HEADER)
        timestamp = _header(request, TIMESTAMP_HEADER)
        signature = _header(request, SIGNATURE_HEADER)
        _check_timestamp(timestamp)
        if not SIGNATURE_FORMAT.fullmatch(signature):
            raise _unauthorized(
                "invalid-signature", f"{SIGNATURE_HEADER} must be 'sha256=' and 64 lowercase hex digits."
            )

        guard = get_guard()
        try:
            key, signature_ok, verdict = self._verify(request, guard, key_id, timestamp, signature)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.error("Redis unreachable while authenticating a request: %s", exc.__class__.__name__)
            raise ServiceUnavailable(
                "Request verification is unavailable: Redis cannot be reached. Retry shortly."
            ) from exc

        # The key's status is told only to whoever proved they hold its secret.
        if not signature_ok:
            raise _unauthorized(
                "invalid-signature",
                "The signature does not match this request (method, path with query, timestamp and body).",
            )
        if not key.active:
            raise _unauthorized("revoked-key", "This API key has been revoked.")
        if key.expires_at is not None and key.expires_at <= time.time():
            raise _unauthorized("expired-key", "This API key has expired.")
        if not verdict.first_seen:
            raise _unauthorized(
                "replayed-request",
                "This exact request was already received. Sign it again with a fresh timestamp to retry.",
            )
        limit = key.rate_limit_per_minute
        if limit and verdict.request_count > limit:
            raise RateLimited(
                f"This key may make {limit} requests per minute; retry after {verdict.window_resets_in} s.",
                headers={"Retry-After": str(verdict.window_resets_in)},
            )
        if verdict.touch_last_used:
            _record_last_used(key)
        return ApiClient(key), key

    def _verify(
        self, request: Request, guard: Guard, key_id: str, timestamp: str, signature: str
    ) -> tuple[keystore.ResolvedKey, bool, Verdict]:
        """Check the signature against the cached key, then confirm the key is current in one round trip.

        Failures are counted per key id and client address. A small body is cheaper to hash than a round trip
        to ask whether the client may still fail, so only a larger one (an upload) is refused before it is read.
        """
        address = request.META.get("REMOTE_ADDR", "")
        if declared_length(request) > settings.API_MAX_BODY_BYTES:
            _refuse_if_limited(guard.failures(key_id, address), before_verifying=True)
        key = keystore.lookup(key_id, guard)
        if key is None:
            _refuse_if_limited(guard.record_failure(None, address))
            raise _unauthorized("unknown-key", "Unknown API key.")
        body = _raw_body(request)
        path = _signed_path(request)

        def matches(k: keystore.ResolvedKey) -> bool:
            expected = compute_signature(k.secret, request.method, path, timestamp, body)
            return hmac.compare_digest(expected, signature)

        signature_ok = matches(key)
        verdict = self._record(guard, key, signature, signature_ok)
        if verdict.generation != key.generation:
            key = keystore.reload(key_id, guard, verdict.generation)
            if key is None:
                raise _unauthorized("unknown-key", "Unknown API key.")
            was_ok, signature_ok = signature_ok, matches(key)
            if signature_ok and not was_ok:
                verdict = self._record(guard, key, signature, True)
        if not signature_ok:
            _refuse_if_limited(guard.record_failure(key.key_id, address))
        return key, signature_ok, verdict

    @staticmethod
    def _record(guard: Guard, key: keystore.ResolvedKey, signature: str, signature_ok: bool) -> Verdict:
        # Only a genuine request is recorded: forgeries must not fill the replay set or spend the key's quota.
        if not signature_ok:
            return Verdict(generation=guard.generation(key.key_id))
        return guard.check(
            key.key_id,
            signature,
            window=2 * settings.SIGNATURE_MAX_AGE_SECONDS,
            rate_limited=key.rate_limit_per_minute > 0,
        )

    def authenticate_header(self, request: Request) -> str:
        return 'RTCstack-HMAC realm="api"'
