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
        "storage": "ok",
        "whisper": "ok",
    }
    assert set(body["capabilities"]) == {"transcriptionLive", "transcriptionPost", "recording"}
    assert body["capabilities"]["transcriptionPost"] is True  # the bundled tiny.en model, in-process


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


@pytest.mark.django_db
def test_health_checks_s3_storage_and_livekit(s3, livekit) -> None:
    body = Client().get("/v1/health").json()
    assert body["checks"]["storage"] == "ok"
    assert body["checks"]["livekit"] == "ok"
    assert body["capabilities"]["recording"] is True


@pytest.mark.django_db
def test_health_reports_unreachable_s3(s3, settings) -> None:
    from rtcstack_site.env import s3_storage

    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": s3_storage(bucket="recordings", endpoint_url="http://127.0.0.1:1", access_key="a",
                                 secret_key="b", region="us-east-1", url_ttl=60),
    }  # fmt: skip
    body = Client().get("/v1/health").json()
    assert body["checks"]["storage"] == "unreachable"
    assert body["capabilities"]["recording"] is False
