"""One attempt of one delivery and what should happen next; tasks.py is the Celery shell around it.

All state lives in the database, so a task that runs twice (a broker redelivery after a worker was
lost, an operator's redeliver racing a retry) never sends the same attempt twice: each run first
claims attempt N with a conditional UPDATE, holding a lease while it sends.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
import urllib3
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.crypto import decrypt_secret

from . import signing, targets
from .models import OPEN_STATUSES, DeliveryStatus, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

EXCERPT_BYTES = 1000
LEASE_MARGIN_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Next:
    """What the task does after a run: nothing (attempt None) or run `attempt` in `countdown` seconds."""

    attempt: int | None = None
    countdown: float = 0.0


DONE = Next()


@dataclass(slots=True)
class Result:
    status_code: int | None = None
    duration_ms: int | None = None
    error: str = ""
    excerpt: str = ""
    permanent: bool = False  # no point retrying (refused address, inactive endpoint)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


def run(delivery_id: str, attempt: int) -> Next:
    """Send attempt number `attempt` of a delivery unless it is already done, in progress or stale."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(public_id=delivery_id).first()
    if delivery is None or delivery.status not in OPEN_STATUSES:
        return DONE  # deleted with its endpoint, or already succeeded/failed
    if delivery.attempts == attempt - 1:
        condition = Q(attempts=attempt - 1)
    elif delivery.attempts == attempt and delivery.sending_until is not None:
        if delivery.sending_until > now:  # another run is sending it: look again when its lease ends
            return Next(attempt, (delivery.sending_until - now).total_seconds() + 1)
        condition = Q(attempts=attempt, sending_until=delivery.sending_until)  # that run died mid-send
    elif delivery.attempts == attempt and delivery.status == DeliveryStatus.RETRYING and delivery.next_attempt_at:
        # This attempt finished but the run may have died before queueing the retry: queue it (again).
        return Next(attempt + 1, max(0.0, (delivery.next_attempt_at - now).total_seconds()))
    else:
        return DONE  # a stale or duplicate task
    lease = now + timedelta(seconds=3 * settings.WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery.pk, status__in=OPEN_STATUSES)
        .filter(condition)
        .update(attempts=attempt, sending_until=lease, updated_at=now)
    )
    if not claimed:
        return DONE
    try:
        result = _send(delivery)
    except Exception:  # a bug must cost one attempt, not leave the delivery claimed forever
        logger.exception("Webhook delivery %s attempt %d failed unexpectedly", delivery.public_id, attempt)
        result = Result(error="Internal error while sending; see the worker log.")
    return _finish(delivery, attempt, result)


def _send(delivery: WebhookDelivery) -> Result:
    endpoint = delivery.endpoint
    if not endpoint.active:
        return Result(error="The endpoint is inactive.", permanent=True)
    try:
        targets.check_url(endpoint.url)
        secret = decrypt_secret(endpoint.secret_encrypted)
    except targets.InvalidTargetError as exc:
        return Result(error=f"Refused: {exc}", permanent=True)
    except targets.UnresolvableTargetError as exc:
        return Result(error=str(exc))
    except InvalidToken:
        return Result(
            error="The endpoint's secret cannot be decrypted (check API_KEY_ENCRYPTION_KEYS).", permanent=True
        )

    body = delivery.body.encode()
    headers = signing.signed_headers(secret, delivery.public_id, int(time.time()), body)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    result = Result()
    with requests.Session() as session:
        session.trust_env = False  # no proxies from the environment: the address check must see the receiver
        if not targets.private_targets_allowed():
            session.mount("http://", targets.GuardedAdapter())
            session.mount("https://", targets.GuardedAdapter())
        try:
            with session.post(
                endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            ) as response:
                result.status_code = response.status_code
                result.excerpt = _excerpt(response)
        except targets.TargetRefusedError as exc:
            result.error, result.permanent = f"Refused: {exc}", True
        except requests.Timeout:
            result.error = f"Timed out after {timeout} s."
        except requests.RequestException as exc:
            result.error = describe_error(exc)
    result.duration_ms = round((time.monotonic() - started) * 1000)
    if result.status_code is not None and not 200 <= result.status_code < 300:
        result.error = f"HTTP {result.status_code}"
        if 300 <= result.status_code < 400:
            result.error += ": redirects are not followed; point the endpoint at the final URL."
    return result


def _excerpt(response: requests.Response) -> str:
    """The start of the response body, for the delivery log; a slow or broken body is not an error."""
    try:
        raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
    except (urllib3.exceptions.HTTPError, OSError):
        return ""
    return raw.decode("utf-8", errors="replace").replace("\x00", "")


def describe_error(exc: BaseException) -> str:
    """The innermost cause of a requests error (e.g. 'Connection refused'), without URLs or headers."""
    root: BaseException = exc
    while True:
        inner = getattr(root, "reason", None)
        if not isinstance(inner, BaseException):
            inner = root.args[0] if root.args and isinstance(root.args[0], BaseException) else root.__cause__
        if inner is None or inner is root:
            break
        root = inner
    return f"{type(root).__name__}: {root}"[:1000]


def _finish(delivery: WebhookDelivery, attempt: int, result: Result) -> Next:
    """Log the attempt and move the delivery on: succeeded, retrying (with the delay) or failed."""
    now = timezone.now()
    delays = settings.WEBHOOK_RETRY_DELAYS
    in_round = attempt - delivery.round_start
    update = {
        "last_response_code": result.status_code,
        "last_duration_ms": result.duration_ms,
        "last_error": result.error,
        "sending_until": None,
        "updated_at": now,
    }
    following = DONE
    if result.succeeded:
        update.update(status=DeliveryStatus.SUCCEEDED, next_attempt_at=None)
    elif result.permanent or in_round > len(delays):
        update.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        delay = delays[in_round - 1]
        update.update(status=DeliveryStatus.RETRYING, next_attempt_at=now + timedelta(seconds=delay))
        following = Next(attempt + 1, delay)
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=attempt,
            started_at=now - timedelta(milliseconds=result.duration_ms or 0),
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error,
            response_excerpt=result.excerpt,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk, attempts=attempt).update(**update)
    log = logger.warning if result.permanent else logger.info
    log(
        "Webhook delivery %s (%s to %s) attempt %d: %s",
        delivery.public_id,
        delivery.event,
        delivery.endpoint.public_id,
        attempt,
        update["status"] + (f" ({result.error})" if result.error else ""),
    )
    return following
