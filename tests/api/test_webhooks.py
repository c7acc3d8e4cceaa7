"""Outgoing webhooks: the /v1/webhooks API, the address guard, signing, and single delivery attempts.

The end-to-end deliveries through a real Celery worker are in test_webhooks_delivery.py.
"""

import base64
import json
from typing import Any

import pytest
import requests

from apps.core.crypto import decrypt_secret
from apps.webhooks import delivery, services, signing, targets
from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.conftest import SignedClient, problem

PUBLIC_URL = "http://93.184.215.14/hooks/rtc"  # a public address literal: no DNS, nothing is sent to it


@pytest.fixture
def allow_private(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_DELAYS = [1, 1, 1, 1, 1, 1]


def create(api: SignedClient, **fields: Any) -> Any:
    return api.post_json("/v1/webhooks", {"url": PUBLIC_URL, "events": ["room_started"], **fields})


# --- API -------------------------------------------------------------------------------------------


def test_create_returns_the_secret_once(api: SignedClient) -> None:
    response = create(api, description="Billing", events=["room_started", "recording_finished"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "description", "events", "active", "createdAt", "secret"}
    assert body["id"].startswith("wh_")
    assert body["url"] == PUBLIC_URL
    assert body["events"] == ["room_started", "recording_finished"]
    assert body["active"] is True
    assert body["createdAt"].endswith("Z")
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24

    stored = WebhookEndpoint.objects.get(public_id=body["id"])
    assert secret not in stored.secret_encrypted
    assert decrypt_secret(stored.secret_encrypted) == secret

    shown = api.send("GET", f"/v1/webhooks/{body['id']}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    listed = api.send("GET", "/v1/webhooks")
    assert secret not in listed.content.decode()


def test_list_is_paginated(api: SignedClient) -> None:
    ids = [create(api, description=f"n{i}").json()["id"] for i in range(3)]
    page = api.send("GET", "/v1/webhooks?limit=2&offset=0").json()
    assert page["total"] == 3
    assert page["limit"] == 2
    assert page["offset"] == 0
    assert [w["id"] for w in page["webhooks"]] == ids[::-1][:2]
    rest = api.send("GET", "/v1/webhooks?limit=2&offset=2").json()
    assert [w["id"] for w in rest["webhooks"]] == [ids[0]]
    bad = api.send("GET", "/v1/webhooks?limit=0")
    assert bad.status_code == 400
    assert "limit" in problem(bad)["errors"]


def test_patch_changes_only_the_fields_sent(api: SignedClient) -> None:
    webhook = create(api, description="before").json()
    path = f"/v1/webhooks/{webhook['id']}"
    response = api.send("PATCH", path, json.dumps({"events": ["*", "room_finished"], "active": False}).encode())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["events"] == ["*"]
    assert body["active"] is False
    assert body["description"] == "before"
    assert body["url"] == PUBLIC_URL
    assert "secret" not in body
    refused = api.send("PATCH", path, json.dumps({"url": "http://10.1.2.3/x"}).encode())
    assert refused.status_code == 400
    assert "private address" in problem(refused)["errors"]["url"][0]
    assert WebhookEndpoint.objects.get(public_id=webhook["id"]).url == PUBLIC_URL


def test_delete_then_unknown(api: SignedClient) -> None:
    webhook = create(api).json()
    path = f"/v1/webhooks/{webhook['id']}"
    assert api.send("DELETE", path).status_code == 204
    gone = api.send("GET", path)
    assert gone.status_code == 404
    assert problem(gone)["type"].endswith("/not-found")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/test"), ("POST", "/rotate-secret"), ("GET", "/deliveries")],
)
def test_unknown_id_is_a_404_problem(api: SignedClient, method: str, suffix: str) -> None:
    response = api.send(method, f"/v1/webhooks/wh_nope{suffix}", b"{}" if method == "PATCH" else b"")
    assert response.status_code == 404
    assert "wh_nope" in problem(response)["detail"]


def test_scope_webhooks_is_required(make_key: Any) -> None:
    token_only = SignedClient(make_key("tokens", ("token",)))
    refused = token_only.send("GET", "/v1/webhooks")
    assert refused.status_code == 403
    assert problem(refused)["type"].endswith("/insufficient-scope")
    assert token_only.post_json("/v1/webhooks", {"url": PUBLIC_URL, "events": ["*"]}).status_code == 403
    assert not WebhookEndpoint.objects.exists()
    webhooks_only = SignedClient(make_key("hooks", ("webhooks",)))
    assert create(webhooks_only).status_code == 201
    assert webhooks_only.send("GET", "/v1/webhooks").status_code == 200


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "url", "required"),
        ({"url": PUBLIC_URL}, "events", "required"),
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url", "http:// or https://"),
        ({"url": "not a url", "events": ["*"]}, "url", "without spaces"),
        ({"url": "http:///path", "events": ["*"]}, "url", "no host"),
        ({"url": "http://example.com:99999/", "events": ["*"]}, "url", "port"),
        ({"url": PUBLIC_URL, "events": []}, "events", "at least one"),
        ({"url": PUBLIC_URL, "events": ["room_exploded"]}, "events.0", "not a valid choice"),  # the item's index
        ({"url": PUBLIC_URL, "events": ["*", "test"]}, "events.1", "not a valid choice"),
        ({"url": PUBLIC_URL, "events": "room_started"}, "events", "list"),
        ({"url": PUBLIC_URL, "events": ["*"], "active": "maybe"}, "active", "boolean"),
    ],
)
def test_validation_errors_are_400_problems_per_field(
    api: SignedClient, payload: dict, field: str, message: str
) -> None:
    response = api.post_json("/v1/webhooks", payload)
    assert response.status_code == 400
    body = problem(response)
    assert body["type"].endswith("/validation-error")
    assert message in " ".join(body["errors"][field])
    assert not WebhookEndpoint.objects.exists()


def test_malformed_json_is_a_problem(api: SignedClient) -> None:
    response = api.send("POST", "/v1/webhooks", b"{nope")
    assert response.status_code == 400
    assert problem(response)["type"].endswith("/malformed-request")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/x", "loopback"),
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.20:8080/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]:9000/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("http://localhost:8000/hook", "loopback"),
    ],
)
def test_private_targets_are_refused(api: SignedClient, url: str, kind: str) -> None:
    response = api.post_json("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code == 400, response.content
    message = problem(response)["errors"]["url"][0]
    assert f"a {kind} address" in message
    assert "WEBHOOKS_ALLOW_PRIVATE_TARGETS" in message


def test_a_name_resolving_to_loopback_names_the_address(api: SignedClient) -> None:
    message = problem(api.post_json("/v1/webhooks", {"url": "http://localhost/", "events": ["*"]}))["errors"]["url"][0]
    assert message.startswith("localhost resolves to ")
    assert "loopback" in message


def test_unresolvable_host_is_refused(api: SignedClient) -> None:
    response = api.post_json("/v1/webhooks", {"url": "https://no-such-host.invalid/x", "events": ["*"]})
    assert response.status_code == 400
    assert "could not be resolved" in problem(response)["errors"]["url"][0]


def test_private_targets_allowed_by_setting(api: SignedClient, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    assert create(api, url="http://127.0.0.1:9/x").status_code == 201


def test_rotate_secret(api: SignedClient) -> None:
    webhook = create(api).json()
    response = api.send("POST", f"/v1/webhooks/{webhook['id']}/rotate-secret")
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["id"] == webhook["id"]
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != webhook["secret"]
    endpoint = WebhookEndpoint.objects.get(public_id=webhook["id"])
    assert decrypt_secret(endpoint.secret_encrypted) == rotated["secret"]
    assert endpoint.secret_rotated_at is not None


def test_test_event_goes_to_that_endpoint_only(api: SignedClient, django_capture_on_commit_callbacks: Any) -> None:
    target = create(api, events=["recording_finished"]).json()
    other = create(api, events=["*"]).json()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.send("POST", f"/v1/webhooks/{target['id']}/test")
    assert response.status_code == 202
    queued = response.json()
    assert queued["status"] == "pending"
    assert len(callbacks) == 1  # the Celery task is sent when the transaction commits
    sent = WebhookDelivery.objects.get(public_id=queued["deliveryId"])
    assert sent.endpoint.public_id == target["id"]
    assert sent.event == "test"
    assert json.loads(sent.body)["data"]["webhookId"] == target["id"]
    assert not WebhookDelivery.objects.filter(endpoint__public_id=other["id"]).exists()

    api.send("PATCH", f"/v1/webhooks/{target['id']}", json.dumps({"active": False}).encode())
    inactive = api.send("POST", f"/v1/webhooks/{target['id']}/test", b"{}")  # not the same request again
    assert inactive.status_code == 409
    assert "inactive" in problem(inactive)["detail"]


def test_deliveries_log(api: SignedClient) -> None:
    webhook = create(api).json()
    services.emit("room_started", {"roomId": "standup"})
    services.emit("room_started", {"roomId": "retro"})
    WebhookDelivery.objects.filter(body__contains="retro").update(
        status="failed", attempts=7, last_response_code=503, last_duration_ms=12, last_error="HTTP 503"
    )
    page = api.send("GET", f"/v1/webhooks/{webhook['id']}/deliveries?limit=10").json()
    assert page["total"] == 2
    newest, oldest = page["deliveries"]
    assert set(newest) == {
        "id", "event", "status", "attempts", "responseCode", "durationMs", "error", "createdAt", "nextAttemptAt",
    }  # fmt: skip
    assert newest["id"].startswith("msg_")
    assert newest["event"] == "room_started"
    assert (newest["status"], newest["attempts"], newest["responseCode"], newest["error"]) == (
        "failed", 7, 503, "HTTP 503",
    )  # fmt: skip
    assert (oldest["status"], oldest["attempts"], oldest["responseCode"], oldest["error"]) == ("pending", 0, None, None)
    assert oldest["nextAttemptAt"].endswith("Z")
    failed = api.send("GET", f"/v1/webhooks/{webhook['id']}/deliveries?status=failed").json()
    assert [d["id"] for d in failed["deliveries"]] == [newest["id"]]
    assert api.send("GET", f"/v1/webhooks/{webhook['id']}/deliveries?status=odd").status_code == 400


def test_schema_documents_the_webhook_endpoints(db: None) -> None:
    from django.test import Client

    schema = Client().get("/v1/schema?format=json").json()
    paths = schema["paths"]
    assert {"/v1/webhooks", "/v1/webhooks/{webhook_id}", "/v1/webhooks/{webhook_id}/test"} <= set(paths)
    assert {"/v1/webhooks/{webhook_id}/deliveries", "/v1/webhooks/{webhook_id}/rotate-secret"} <= set(paths)
    create_schema = schema["components"]["schemas"]["WebhookCreateRequest"]
    assert set(create_schema["required"]) == {"url", "events"}
    assert "secret" in schema["components"]["schemas"]["WebhookWithSecret"]["properties"]


# --- emit ------------------------------------------------------------------------------------------


def test_emit_reaches_active_subscribers_only(db: None, django_capture_on_commit_callbacks: Any) -> None:
    wanted, _ = services.create_endpoint(PUBLIC_URL, ["room_started"])
    everything, _ = services.create_endpoint(PUBLIC_URL, ["*"])
    services.create_endpoint(PUBLIC_URL, ["recording_finished"])
    services.create_endpoint(PUBLIC_URL, ["*"], active=False)
    with django_capture_on_commit_callbacks() as callbacks:
        deliveries = services.emit("room_started", {"roomId": "standup", "at": 1})
    assert {d.endpoint_id for d in deliveries} == {wanted.pk, everything.pk}
    assert len(callbacks) == 2
    bodies = {d.body for d in WebhookDelivery.objects.all()}
    assert len(bodies) == 1  # serialised once
    body = json.loads(bodies.pop())
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "room_started"
    assert body["timestamp"].endswith("Z")
    assert body["data"] == {"roomId": "standup", "at": 1}
    assert [d.endpoint_id for d in services.emit("participant_left", {})] == [everything.pk]


def test_emit_refuses_unknown_events(db: None) -> None:
    with pytest.raises(ValueError, match="Unknown webhook event"):
        services.emit("room_exploded", {})
    with pytest.raises(ValueError, match="Unknown webhook event"):
        services.emit("*", {})


def test_emit_inside_a_rolled_back_transaction_sends_nothing(transactional_db: None) -> None:
    from django.db import transaction

    services.create_endpoint(PUBLIC_URL, ["*"])

    @transaction.atomic
    def change_that_fails() -> None:
        services.emit("room_finished", {"roomId": "x"})
        raise RuntimeError("the caller's change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert not WebhookDelivery.objects.exists()


# --- signing ---------------------------------------------------------------------------------------


def test_standard_webhooks_test_vector() -> None:
    """The published Standard Webhooks example: receivers using any of its libraries will verify us."""
    signature = signing.standard_signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_secrets_are_random_whsec_values() -> None:
    first, second = signing.generate_secret(), signing.generate_secret()
    assert first != second
    assert all(len(base64.b64decode(s.removeprefix("whsec_"), validate=True)) == 24 for s in (first, second))


# --- one attempt, in process ------------------------------------------------------------------------


def make_delivery(url: str, event: str = "room_started") -> WebhookDelivery:
    services.create_endpoint(url, ["*"])
    (created,) = services.emit(event, {"roomId": "standup"})
    return created


def test_a_succeeded_delivery_is_never_sent_again(db: None, allow_private: None, receiver_factory: Any) -> None:
    receiver = receiver_factory([200])
    sent = make_delivery(receiver.url)
    assert delivery.run(sent.public_id, 1) == delivery.DONE
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.last_response_code) == ("succeeded", 1, 200)
    assert sent.sending_until is None
    (attempt,) = WebhookAttempt.objects.filter(delivery=sent)
    assert attempt.response_excerpt == '{"received": 1}'
    for duplicate in (1, 2):  # a broker redelivery of the same task, or a stale retry
        assert delivery.run(sent.public_id, duplicate) == delivery.DONE
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["path"] == "/hooks/rtc?tenant=7"


def test_failure_schedules_a_retry_with_the_configured_delay(
    db: None, allow_private: None, settings: Any, receiver_factory: Any
) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [30, 120]
    receiver = receiver_factory([500, 502, 503])
    sent = make_delivery(receiver.url)
    assert delivery.run(sent.public_id, 1) == delivery.Next(2, 30)
    sent.refresh_from_db()
    assert (sent.status, sent.last_response_code, sent.last_error) == ("retrying", 500, "HTTP 500")
    assert 25 < (sent.next_attempt_at - sent.updated_at).total_seconds() <= 30
    assert delivery.run(sent.public_id, 1) == delivery.Next(2, pytest.approx(30, abs=2))  # re-queues, never resends
    assert delivery.run(sent.public_id, 2) == delivery.Next(3, 120)
    assert delivery.run(sent.public_id, 3) == delivery.DONE
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.last_response_code, sent.next_attempt_at) == ("failed", 3, 503, None)
    assert len(receiver.requests) == 3
    assert list(WebhookAttempt.objects.filter(delivery=sent).values_list("number", "status_code")) == [
        (1, 500), (2, 502), (3, 503),
    ]  # fmt: skip


def test_an_attempt_in_progress_is_not_sent_twice(db: None, allow_private: None, receiver_factory: Any) -> None:
    receiver = receiver_factory([200])
    sent = make_delivery(receiver.url)
    from django.utils import timezone

    WebhookDelivery.objects.filter(pk=sent.pk).update(
        attempts=1, sending_until=timezone.now() + timezone.timedelta(seconds=20)
    )
    following = delivery.run(sent.public_id, 1)
    assert following.attempt == 1
    assert 19 < following.countdown <= 21
    assert receiver.requests == []
    # The run holding the lease died: once the lease is over, the same attempt is sent again.
    WebhookDelivery.objects.filter(pk=sent.pk).update(sending_until=timezone.now() - timezone.timedelta(seconds=1))
    assert delivery.run(sent.public_id, 1) == delivery.DONE
    assert len(receiver.requests) == 1
    sent.refresh_from_db()
    assert (sent.status, sent.attempts) == ("succeeded", 1)


def test_redirects_are_not_followed(db: None, allow_private: None, receiver_factory: Any) -> None:
    receiver = receiver_factory([302], headers={"Location": "http://169.254.169.254/latest"})
    sent = make_delivery(receiver.url)
    delivery.run(sent.public_id, 1)
    sent.refresh_from_db()
    assert sent.status == "retrying"
    assert sent.last_response_code == 302
    assert "redirects are not followed" in sent.last_error
    assert len(receiver.requests) == 1


def test_network_errors_are_recorded(db: None, allow_private: None) -> None:
    from tests.support.servers import free_port

    sent = make_delivery(f"http://127.0.0.1:{free_port()}/closed")
    assert delivery.run(sent.public_id, 1).attempt == 2
    sent.refresh_from_db()
    assert sent.last_response_code is None
    assert "Connection refused" in sent.last_error
    assert "whsec_" not in sent.last_error


def test_timeouts_are_recorded(db: None, allow_private: None, settings: Any, receiver_factory: Any) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver = receiver_factory([200], delay=2)
    sent = make_delivery(receiver.url)
    delivery.run(sent.public_id, 1)
    sent.refresh_from_db()
    assert sent.status == "retrying"
    assert sent.last_error == "Timed out after 1 s."
    assert 900 <= sent.last_duration_ms < 1900


def test_private_target_refused_at_delivery_time_without_retry(
    db: None, allow_private: None, settings: Any, receiver_factory: Any
) -> None:
    receiver = receiver_factory([200])
    sent = make_delivery(receiver.url)  # allowed when created
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False  # not any more when it is sent
    assert delivery.run(sent.public_id, 1) == delivery.DONE
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.next_attempt_at) == ("failed", 1, None)
    assert sent.last_error.startswith("Refused: 127.0.0.1 is a loopback address")
    assert receiver.requests == []


def test_inactive_endpoint_fails_its_pending_deliveries(db: None, allow_private: None, receiver_factory: Any) -> None:
    receiver = receiver_factory([200])
    sent = make_delivery(receiver.url)
    WebhookEndpoint.objects.update(active=False)
    assert delivery.run(sent.public_id, 1) == delivery.DONE
    sent.refresh_from_db()
    assert (sent.status, sent.last_error) == ("failed", "The endpoint is inactive.")
    assert receiver.requests == []


def test_connection_level_guard_checks_the_peer_address(receiver_factory: Any) -> None:
    """Even if DNS answered differently a moment earlier, the socket's real peer is checked."""
    receiver = receiver_factory([200])
    with requests.Session() as session:
        session.mount("http://", targets.GuardedAdapter())
        with pytest.raises(targets.TargetRefusedError, match="loopback"):
            session.post(receiver.url, data=b"{}", timeout=5)
    assert receiver.requests == []


def test_overdue_deliveries_are_requeued(db: None, django_capture_on_commit_callbacks: Any) -> None:
    """A delivery whose broker message was lost is found from the database and queued again."""
    from datetime import timedelta

    from django.utils import timezone

    services.create_endpoint(PUBLIC_URL, ["*"])
    lost, _fresh, done, sending = (services.emit("room_started", {"n": n})[0] for n in range(4))
    long_ago = timezone.now() - timedelta(minutes=10)
    WebhookDelivery.objects.filter(pk=lost.pk).update(status="retrying", attempts=2, next_attempt_at=long_ago)
    WebhookDelivery.objects.filter(pk=done.pk).update(status="succeeded", attempts=1, next_attempt_at=long_ago)
    WebhookDelivery.objects.filter(pk=sending.pk).update(
        attempts=1, next_attempt_at=long_ago, sending_until=timezone.now() + timedelta(seconds=30)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.requeue_overdue() == 1
    assert len(callbacks) == 1


# --- admin -----------------------------------------------------------------------------------------


@pytest.fixture
def operator(db: None) -> Any:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("operator", "op@example.com", "pw-long-enough-1"))
    return client


def shown_once(html: str) -> tuple[str, str]:
    import re

    endpoint_id = re.search(r'<code id="key-id">([^<]+)</code>', html).group(1)
    secret = re.search(r'<code id="secret">([^<]+)</code>', html).group(1)
    return endpoint_id, secret


def test_admin_create_shows_the_secret_once(operator: Any) -> None:
    response = operator.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"url": PUBLIC_URL, "description": "Billing", "events": ["room_started", "room_finished"], "active": "on"},
        follow=True,
    )
    assert response.status_code == 200, response.content[:2000]
    assert response.redirect_chain[0][0].endswith("/secret/")  # POST/redirect/GET: a reload shows nothing again
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    endpoint_id, secret = shown_once(html)
    assert "Endpoint ID" in html
    assert "never be shown again" in html
    endpoint = WebhookEndpoint.objects.get(public_id=endpoint_id)
    assert endpoint.events == ["room_started", "room_finished"]
    assert decrypt_secret(endpoint.secret_encrypted) == secret
    assert secret not in operator.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert secret not in operator.get("/admin/webhooks/webhookendpoint/").content.decode()


def test_admin_refuses_private_urls(operator: Any) -> None:
    response = operator.post(
        "/admin/webhooks/webhookendpoint/add/", {"url": "http://169.254.169.254/", "events": ["*"], "active": "on"}
    )
    assert response.status_code == 200
    assert "a link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_admin_rotate_secret(operator: Any) -> None:
    endpoint, old = services.create_endpoint(PUBLIC_URL, ["*"])
    confirm = operator.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/rotate/")
    assert "stops working" in confirm.content.decode()
    rotated = operator.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/rotate/", follow=True)
    same_id, new = shown_once(rotated.content.decode())
    assert same_id == endpoint.public_id
    assert new != old
    endpoint.refresh_from_db()
    assert decrypt_secret(endpoint.secret_encrypted) == new


def test_admin_filters_and_search(operator: Any) -> None:
    services.create_endpoint("http://93.184.215.14/a", ["room_started"], description="Billing backend")
    services.create_endpoint("http://93.184.215.14/b", ["*"], description="Analytics")
    services.create_endpoint("http://93.184.215.14/c", ["recording_finished"], description="Archive", active=False)
    by_event = operator.get("/admin/webhooks/webhookendpoint/", {"event": "room_started"}).content.decode()
    assert "93.184.215.14/a" in by_event
    assert "93.184.215.14/b" in by_event
    assert "93.184.215.14/c" not in by_event
    searched = operator.get("/admin/webhooks/webhookendpoint/", {"q": "billing"}).content.decode()
    assert "93.184.215.14/a" in searched
    assert "93.184.215.14/b" not in searched
    active = operator.get("/admin/webhooks/webhookendpoint/", {"active__exact": "1"}).content.decode()
    assert "93.184.215.14/c" not in active


def test_admin_delivery_log(operator: Any) -> None:
    endpoint, _ = services.create_endpoint(PUBLIC_URL, ["*"])
    (sent,) = services.emit("recording_finished", {"recordingId": "rec_1"})
    WebhookDelivery.objects.filter(pk=sent.pk).update(status="failed", attempts=1, last_response_code=500)
    WebhookAttempt.objects.create(
        delivery=sent, number=1, started_at=sent.created_at, status_code=500, error="HTTP 500", response_excerpt="oops"
    )
    for query in ({"status__exact": "failed"}, {"event": "recording_finished"}, {"endpoint__id__exact": endpoint.pk}):
        page = operator.get("/admin/webhooks/webhookdelivery/", query)
        assert page.status_code == 200
        assert sent.public_id in page.content.decode()
    assert (
        sent.public_id
        not in operator.get("/admin/webhooks/webhookdelivery/", {"status__exact": "pending"}).content.decode()
    )
    detail = operator.get(f"/admin/webhooks/webhookdelivery/{sent.pk}/change/").content.decode()
    assert "rec_1" in detail  # the body
    assert "oops" in detail  # the attempts, inline
    assert 'name="_save"' not in detail  # a log, not a form
    assert operator.get("/admin/webhooks/webhookdelivery/add/").status_code == 403


def test_admin_test_button_queues_a_test_event(operator: Any) -> None:
    endpoint, _ = services.create_endpoint(PUBLIC_URL, ["room_started"])
    response = operator.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/test/")
    assert response.status_code == 302
    sent = WebhookDelivery.objects.get(endpoint=endpoint)
    assert sent.event == "test"
    assert response["Location"] == f"/admin/webhooks/webhookdelivery/{sent.pk}/change/"
