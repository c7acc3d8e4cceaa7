"""Managing endpoints and queueing deliveries. `emit` is the one function other apps call.

    from apps.webhooks.services import emit
    emit("recording_finished", {"recordingId": ..., "roomId": ...})

Deliveries are rows first and Celery tasks second: the task is enqueued only when the caller's
transaction commits, and everything a retry needs (body, attempt count, schedule) is in the database.
"""

import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.core import crypto

from . import signing
from .models import OPEN_STATUSES, TEST_EVENT, DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

ENDPOINT_ID_PREFIX = "wh_"
DELIVERY_ID_PREFIX = "msg_"
SUBSCRIBABLE_EVENTS: tuple[str, ...] = tuple(Event.values)
EMITTABLE_EVENTS = frozenset(e for e in SUBSCRIBABLE_EVENTS if e != Event.ALL)


def generate_endpoint_id() -> str:
    return ENDPOINT_ID_PREFIX + secrets.token_hex(12)


def generate_delivery_id() -> str:
    return DELIVERY_ID_PREFIX + secrets.token_hex(12)


def validate_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    unknown = sorted(set(chosen) - set(SUBSCRIBABLE_EVENTS))
    if unknown:
        raise ValueError(f"Unknown event(s): {', '.join(unknown)}. Choose from: {', '.join(SUBSCRIBABLE_EVENTS)}.")
    if not chosen:
        raise ValueError("Subscribe to at least one event ('*' for all).")
    return [Event.ALL.value] if Event.ALL in chosen else chosen


def subscribed(endpoints: QuerySet[WebhookEndpoint], event: str) -> QuerySet[WebhookEndpoint]:
    """Endpoints subscribed to `event` or `*`: a JSON containment query where the database has one."""
    if connection.features.supports_json_field_contains:
        return endpoints.filter(events__contains=[event]) | endpoints.filter(events__contains=[Event.ALL.value])
    return endpoints.filter(pk__in=[e.pk for e in endpoints if e.wants(event)])


def assign_new_secret(endpoint: WebhookEndpoint) -> str:
    """Set a fresh secret on an unsaved or saved endpoint; the caller saves it and shows it once."""
    return crypto.assign_new_secret(endpoint, signing.generate_secret)


def create_endpoint(
    url: str, events: Iterable[str], *, description: str = "", active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint (the URL is checked by the caller's validation); returns it and its secret."""
    endpoint = WebhookEndpoint(
        public_id=generate_endpoint_id(),
        url=url,
        description=description,
        events=validate_events(events),
        active=active,
    )
    plain = assign_new_secret(endpoint)
    endpoint.save()
    return endpoint, plain


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """Replace the secret; every delivery sent after this commits (retries included) uses the new one."""
    return crypto.rotate_secret(endpoint, signing.generate_secret)


def render_body(event: str, data: dict[str, Any]) -> str:
    """The delivery body, serialised once: `{"type", "timestamp", "data"}`."""
    timestamp = timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = {"type": event, "timestamp": timestamp, "data": data}
    return orjson.dumps(payload, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS).decode()


def enqueue(delivery: WebhookDelivery) -> None:
    """Send the delivery's next attempt once the surrounding transaction commits.

    If the broker is down the delivery stays pending (logged); an operator can redeliver it.
    """
    delivery_id, attempt = delivery.public_id, delivery.attempts + 1

    def send_task() -> None:
        from .tasks import deliver

        deliver.apply_async(args=(delivery_id, attempt))

    transaction.on_commit(send_task, robust=True)


def _new_delivery(endpoint: WebhookEndpoint, event: str, body: str) -> WebhookDelivery:
    return WebhookDelivery(
        public_id=generate_delivery_id(),
        endpoint=endpoint,
        event=event,
        body=body,
        next_attempt_at=timezone.now(),
    )


def emit(event: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Queue `event` with `data` (JSON-serialisable; datetimes become ISO 8601) to every active
    endpoint subscribed to it. Call it inside the transaction that made the change: nothing is sent
    if that transaction rolls back.
    """
    if event not in EMITTABLE_EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}; one of: {', '.join(sorted(EMITTABLE_EVENTS))}.")
    endpoints = list(subscribed(WebhookEndpoint.objects.filter(active=True), event))
    if not endpoints:
        return []
    body = render_body(event, data)
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create([_new_delivery(e, event, body) for e in endpoints])
        for delivery in deliveries:
            enqueue(delivery)
    logger.info("Queued webhook %s to %d endpoint(s)", event, len(deliveries))
    return deliveries


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `test` event to this one endpoint, whatever it subscribes to."""
    data = {"webhookId": endpoint.public_id, "message": "Test event from RTCstack."}
    with transaction.atomic():
        delivery = _new_delivery(endpoint, TEST_EVENT, render_body(TEST_EVENT, data))
        delivery.save()
        enqueue(delivery)
    return delivery


class DeliveryInProgressError(Exception):
    """An attempt of this delivery is being sent right now."""


def redeliver(delivery: WebhookDelivery) -> None:
    """Queue the same body again with a fresh retry schedule; the attempt log keeps the earlier tries."""
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if locked.sending_until and locked.sending_until > timezone.now():
            raise DeliveryInProgressError(f"Delivery {locked.public_id} is being sent right now; try again shortly.")
        locked.status = DeliveryStatus.PENDING
        locked.round_start = locked.attempts
        locked.next_attempt_at = timezone.now()
        locked.sending_until = None
        locked.save(update_fields=["status", "round_start", "next_attempt_at", "sending_until", "updated_at"])
        enqueue(locked)
    delivery.refresh_from_db()


def requeue_overdue() -> int:
    """Queue again every open delivery whose next attempt is JOB_SWEEP_GRACE_SECONDS overdue; returns how many.

    The database, not the broker, is the record of what is owed: this sweep (run by celery beat) recovers
    deliveries whose message was lost (broker data gone, enqueue failed while the broker was down). Each is
    marked due now, so the next sweep leaves it alone for another grace period. A duplicate of a message
    that still exists is harmless: each attempt number is claimed once (see delivery.py).
    """
    now = timezone.now()
    overdue = WebhookDelivery.objects.filter(
        status__in=OPEN_STATUSES, next_attempt_at__lt=now - timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    ).filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now))
    with transaction.atomic():
        deliveries = list(overdue.select_for_update(skip_locked=True))
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(next_attempt_at=now)
        for delivery in deliveries:
            enqueue(delivery)
    if deliveries:
        logger.warning("Re-queued %d overdue webhook deliveries", len(deliveries))
    return len(deliveries)
