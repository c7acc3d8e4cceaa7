import pytest
from django.test import Client

import rtcstack_site


@pytest.mark.django_db
def test_health_reports_every_check_without_auth() -> None:
    response = Client().get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == rtcstack_site.__version__
    assert body["checks"] == {
        "database": "ok",
        "redis": "ok",
        "livekit": "not_configured",
        "storage": "not_configured",
        "whisper": "not_configured",
    }
    assert set(body["capabilities"]) == {"transcriptionLive", "transcriptionPost", "recording"}


@pytest.mark.django_db
def test_health_with_redis_down_reports_it(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["redis"] == "unreachable"
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_health_reports_unreachable_livekit_and_whisper(settings) -> None:
    settings.LIVEKIT_URL = "http://127.0.0.1:1"
    settings.WHISPER_URL = "http://127.0.0.1:1"
    response = Client().get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["livekit"] == "unreachable"
    assert body["checks"]["whisper"] == "unreachable"


@pytest.mark.django_db
def test_health_reports_reachable_livekit(settings, live_server) -> None:
    """Any HTTP server answering below 500 counts as reachable; here the project's own live server."""
    settings.LIVEKIT_URL = live_server.url + "/v1/health"
    response = Client().get("/v1/health")
    assert response.json()["checks"]["livekit"] == "ok"
