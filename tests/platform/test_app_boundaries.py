"""Cross-app reactions go through signals and registries wired in AppConfig.ready() (issue 12; which app may
import which is pyproject.toml's import contracts, tests/platform/test_architecture.py): they keep working as before."""

import json
import time
from typing import Any

import pytest
from django.test import Client

from apps.core import health
from apps.core.problems import ServiceUnavailable
from apps.core.redis import get_redis
from apps.dashboard.events import speaking_now
from apps.rooms.models import LiveKitEvent, Room
from apps.rooms.signals import room_event
from speech.livestore import client_db, events_channel
from tests.support.workers import live_persister


@pytest.mark.django_db
def test_a_registered_check_and_capability_appear_in_health(monkeypatch) -> None:
    monkeypatch.setattr(health, "CHECKS", dict(health.CHECKS))
    monkeypatch.setattr(health, "CAPABILITIES", dict(health.CAPABILITIES))
    health.register_check("mailer", lambda: health.UNREACHABLE)
    health.register_capability("email", lambda checks: checks["mailer"] == health.OK)
    response = Client().get("/v1/health")
    assert response.status_code == 200  # only the database and Redis are essential
    body = response.json()
    assert body["status"] == "degraded"
    assert list(body["checks"]) == ["database", "redis", "livekit", "storage", "whisper", "mailer"]
    assert body["checks"]["mailer"] == "unreachable"
    assert body["capabilities"]["email"] is False


@pytest.mark.django_db(transaction=True)
def test_a_failing_reaction_rolls_the_livekit_event_back_so_its_retry_is_applied(livekit, live_server) -> None:
    """The signals fire inside the event's transaction: nothing of an event stays half-applied."""
    livekit.webhook_url = live_server.url + "/v1/livekit/webhook"

    def outage(**kwargs: Any) -> None:
        raise ServiceUnavailable("The webhook store is down.")

    room_event.connect(outage, dispatch_uid="test.outage")
    try:
        livekit.add_room("standup")
        failed = livekit.room_started("standup")
    finally:
        room_event.disconnect(dispatch_uid="test.outage")
    assert failed.status == 503, failed.response_body
    assert not LiveKitEvent.objects.exists()
    assert not Room.objects.exists()

    retried = livekit.resend_webhook(failed)
    assert retried.status == 200, retried.response_body
    assert b'"duplicate":false' in retried.response_body
    assert Room.objects.filter(name="standup").exists()


@pytest.mark.slow  # a persister process
@pytest.mark.django_db(transaction=True)
def test_persistlive_still_relays_the_agents_speaking_indicators_to_the_dashboard() -> None:
    """The dashboard starts its relay from transcription's persister_started signal."""
    client = get_redis()
    event = json.dumps({"type": "speaking", "speakerId": "carol", "speaker": "Carol King"})
    with live_persister():
        deadline = time.monotonic() + 15
        while speaking_now("standup") != {"carol": "Carol King"}:
            assert time.monotonic() < deadline, "the relay did not record the speaking indicator"
            client.publish(events_channel("standup", client_db(client)), event)  # until the relay subscribed
            time.sleep(0.1)
