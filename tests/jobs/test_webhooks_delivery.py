"""Webhook deliveries end to end: a real Celery worker (Redis broker) POSTs to a real local receiver.

Signatures are checked with an implementation of the Standard Webhooks algorithm written here, not
with apps.webhooks.signing, so a mistake there cannot hide behind the same mistake here.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.webhooks import services
from apps.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.support.fakes import Receiver
from tests.support.waiting import wait_until
from tests.support.workers import celery_worker

pytestmark = pytest.mark.slow  # a real Celery worker, retries a second apart

RETRY_DELAYS = [1, 1, 1, 1, 1, 1]
WORKER_ENV = {"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1", "WEBHOOK_RETRY_DELAYS": ",".join(map(str, RETRY_DELAYS))}


@pytest.fixture
def webhook_settings(settings: Any) -> None:
    """The test process must agree with the worker (validation at create, retry budget in emit)."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_DELAYS = RETRY_DELAYS


@pytest.fixture
def worker(transactional_db: None, webhook_settings: None) -> Iterator[Any]:
    with celery_worker(WORKER_ENV) as process:
        yield process


def finished(delivery_id: str) -> WebhookDelivery | None:
    found = WebhookDelivery.objects.get(public_id=delivery_id)
    return found if found.status in ("succeeded", "failed") else None


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> None:
    """Standard Webhooks verification, from the specification."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= tolerance
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    passed = [sig.split(",", 1)[1] for sig in headers["webhook-signature"].split(" ") if sig.startswith("v1,")]
    assert any(hmac.compare_digest(expected, sig) for sig in passed), "webhook-signature does not verify"


def verify_reference_signature(secret: str, headers: dict[str, str], body: bytes) -> None:
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-rtcstack-signature"], expected)


def test_fails_twice_then_succeeds(worker: Any, receiver_factory: Any) -> None:
    receiver: Receiver = receiver_factory([500, 500, 200])
    _, secret = services.create_endpoint(receiver.url, ["room_started"])
    (queued,) = services.emit("room_started", {"roomId": "standup", "sid": "RM_1"})

    done = wait_until(lambda: finished(queued.public_id), what="the delivery to finish")
    assert done.status == "succeeded"
    assert done.attempts == 3
    assert (done.last_response_code, done.last_error, done.next_attempt_at) == (200, "", None)
    attempts = list(WebhookAttempt.objects.filter(delivery=done).order_by("number"))
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert [a.error for a in attempts] == ["HTTP 500", "HTTP 500", ""]
    assert all(a.duration_ms is not None for a in attempts)
    assert attempts[1].started_at >= attempts[0].started_at  # retried after the delay, in order

    assert len(receiver.requests) == 3
    bodies = {r["body"] for r in receiver.requests}
    assert bodies == {done.body.encode()}  # byte-identical on every attempt
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {queued.public_id}
    for request in receiver.requests:
        headers = request["headers"]
        verify_standard_webhook(secret, headers, request["body"])
        verify_reference_signature(secret, headers, request["body"])
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("RTCstack-Webhooks/")
        assert request["path"] == "/hooks/rtc?tenant=7"
    payload = json.loads(receiver.requests[0]["body"])
    assert payload["type"] == "room_started"
    assert payload["data"] == {"roomId": "standup", "sid": "RM_1"}
    assert payload["timestamp"].endswith("Z")


def test_always_failing_receiver_ends_failed(worker: Any, receiver_factory: Any) -> None:
    receiver: Receiver = receiver_factory([503])
    services.create_endpoint(receiver.url, ["*"])
    (queued,) = services.emit("transcription_failed", {"transcriptionId": "tr_1", "reason": "decode error"})

    done = wait_until(lambda: finished(queued.public_id), what="the delivery to fail")
    assert done.status == "failed"
    assert done.attempts == len(RETRY_DELAYS) + 1
    assert (done.last_response_code, done.last_error, done.next_attempt_at) == (503, "HTTP 503", None)
    assert WebhookAttempt.objects.filter(delivery=done).count() == len(RETRY_DELAYS) + 1
    time.sleep(1.5)  # nothing else is queued after the last attempt
    assert len(receiver.requests) == len(RETRY_DELAYS) + 1


def test_a_pending_retry_survives_a_worker_restart(
    transactional_db: None,
    webhook_settings: None,
    settings: Any,
    receiver_factory: Any,
) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [3]
    receiver: Receiver = receiver_factory([500, 200])
    services.create_endpoint(receiver.url, ["*"])
    with celery_worker({**WORKER_ENV, "WEBHOOK_RETRY_DELAYS": "3"}):
        (queued,) = services.emit("recording_finished", {"recordingId": "rec_1"})
        wait_until(lambda: WebhookDelivery.objects.filter(pk=queued.pk, status="retrying").exists(), what="a retry")
    # The worker stopped with the retry still waiting for its countdown; a new worker must send it.
    assert WebhookDelivery.objects.get(pk=queued.pk).status == "retrying"
    with celery_worker({**WORKER_ENV, "WEBHOOK_RETRY_DELAYS": "3"}):
        done = wait_until(lambda: finished(queued.public_id), what="the retry after the restart")
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert len(receiver.requests) == 2


def test_redeliver_from_admin(worker: Any, receiver_factory: Any) -> None:
    receiver: Receiver = receiver_factory([200])
    endpoint, secret = services.create_endpoint(receiver.url, ["*"])
    body = services.render_body("room_finished", {"roomId": "standup"})
    failed = WebhookDelivery.objects.create(
        public_id=services.generate_delivery_id(),
        endpoint=endpoint,
        event="room_finished",
        body=body,
        status="failed",
        attempts=7,
        last_response_code=503,
        last_error="HTTP 503",
    )
    operator = Client()
    operator.force_login(get_user_model().objects.create_superuser("operator", "op@example.com", "pw-long-enough-1"))
    page = operator.get(f"/admin/webhooks/webhookdelivery/{failed.pk}/change/")
    assert page.status_code == 200
    assert "Redeliver" in page.content.decode()

    response = operator.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver_selected", "_selected_action": [str(failed.pk)]}
    )
    assert response.status_code == 302
    done = wait_until(lambda: finished(failed.public_id), what="the redelivery")
    assert (done.status, done.attempts, done.last_response_code, done.last_error) == ("succeeded", 8, 200, "")
    assert list(WebhookAttempt.objects.filter(delivery=done).values_list("number", "status_code")) == [(8, 200)]
    (request,) = receiver.requests
    assert request["body"] == body.encode()
    assert request["headers"]["webhook-id"] == failed.public_id
    verify_standard_webhook(secret, request["headers"], request["body"])

    # The button on the delivery's page does the same.
    button = operator.post(f"/admin/webhooks/webhookdelivery/{failed.pk}/redeliver/")
    assert button.status_code == 302
    wait_until(lambda: len(receiver.requests) == 2, what="the second redelivery")
    assert wait_until(lambda: finished(failed.public_id)).attempts == 9
