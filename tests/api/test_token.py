"""POST /v1/token and /v1/token/refresh: grants by role, checked with livekit-api's own verifier."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from livekit import api as livekit

from tests.conftest import SignedClient, problem

BASE = {"roomId": "standup", "userId": "alice", "name": "Alice"}


def verify(token: str) -> livekit.access_token.Claims:
    return livekit.TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET).verify(token)


EXPECTED_GRANTS = {
    "host": {
        "can_publish": True,
        "can_subscribe": True,
        "can_publish_data": True,
        "room_admin": True,
        "room_record": True,
    },
    "moderator": {
        "can_publish": True,
        "can_subscribe": True,
        "can_publish_data": True,
        "room_admin": None,
        "room_record": None,
    },
    "participant": {
        "can_publish": True,
        "can_subscribe": True,
        "can_publish_data": True,
        "room_admin": None,
        "room_record": None,
    },
    "viewer": {
        "can_publish": False,
        "can_subscribe": True,
        "can_publish_data": False,
        "room_admin": None,
        "room_record": None,
    },
}


@pytest.mark.parametrize("endpoint", ["/v1/token", "/v1/token/refresh"])
@pytest.mark.parametrize("role", sorted(EXPECTED_GRANTS))
def test_grants_by_role(api: SignedClient, role: str, endpoint: str) -> None:
    response = api.post_json(endpoint, {**BASE, "role": role})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "url", "expiresAt"}
    assert body["url"] == settings.LIVEKIT_PUBLIC_URL
    claims = verify(body["token"])
    assert claims.identity == "alice"
    assert claims.name == "Alice"
    assert claims.video.room == "standup"
    assert claims.video.room_join is True
    for grant, expected in EXPECTED_GRANTS[role].items():
        assert getattr(claims.video, grant) == expected, grant


def test_expiry_matches_token_and_defaults_to_server_ttl(api: SignedClient) -> None:
    before = datetime.now(UTC).timestamp()
    body = api.post_json("/v1/token", {**BASE, "role": "host"}).json()
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    assert body["expiresAt"].endswith("Z")
    assert abs(expires.timestamp() - (before + settings.TOKEN_TTL_SECONDS)) <= 2
    import jwt

    exp = jwt.decode(body["token"], options={"verify_signature": False})["exp"]
    assert exp == int(expires.timestamp())


def test_requested_ttl_is_used_when_shorter(api: SignedClient) -> None:
    before = datetime.now(UTC).timestamp()
    body = api.post_json("/v1/token", {**BASE, "role": "viewer", "ttl": 600}).json()
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (before + 600)) <= 2


def test_requested_ttl_is_capped(api: SignedClient) -> None:
    before = datetime.now(UTC).timestamp()
    body = api.post_json("/v1/token", {**BASE, "role": "viewer", "ttl": 10 * settings.TOKEN_TTL_SECONDS}).json()
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (before + settings.TOKEN_TTL_SECONDS)) <= 2


def test_display_name_is_an_alias_of_name(api: SignedClient) -> None:
    body = api.post_json("/v1/token", {"roomId": "r", "userId": "bob", "displayName": "Bob B.", "role": "host"}).json()
    assert verify(body["token"]).name == "Bob B."


def test_metadata_object_becomes_a_json_string(api: SignedClient) -> None:
    body = api.post_json("/v1/token", {**BASE, "role": "host", "metadata": {"team": "blue", "n": 1}}).json()
    import json

    assert json.loads(verify(body["token"]).metadata) == {"team": "blue", "n": 1}


def test_metadata_string_is_passed_through(api: SignedClient) -> None:
    body = api.post_json("/v1/token", {**BASE, "role": "host", "metadata": "plain text"}).json()
    assert verify(body["token"]).metadata == "plain text"


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"roomId", "userId", "role"}),
        ({**BASE, "role": "superuser"}, {"role"}),
        ({**BASE, "role": "host", "ttl": 0}, {"ttl"}),
        ({**BASE, "role": "host", "ttl": "soon"}, {"ttl"}),
        ({**BASE, "role": "host", "roomId": "x" * 300}, {"roomId"}),
        ({**BASE, "role": "host", "metadata": "m" * 70_000}, {"metadata"}),
    ],
)
def test_validation_errors_are_400_problems_per_field(api: SignedClient, payload: dict, fields: set) -> None:
    response = api.post_json("/v1/token", payload)
    assert response.status_code == 400
    body = problem(response)
    assert body["type"].endswith("/validation-error")
    assert set(body["errors"]) == fields
    assert all(isinstance(m, str) for messages in body["errors"].values() for m in messages)


def test_malformed_json_is_a_400_problem(api: SignedClient) -> None:
    response = api.send("POST", "/v1/token", b'{"roomId": ')
    assert response.status_code == 400
    assert problem(response)["type"].endswith("/malformed-request")


def test_livekit_not_configured_is_503(api: SignedClient, settings) -> None:
    settings.LIVEKIT_API_SECRET = ""
    response = api.post_json("/v1/token", {**BASE, "role": "host"})
    assert response.status_code == 503
    assert "LIVEKIT_API_SECRET" in problem(response)["detail"]


def test_unknown_v1_path_is_a_problem(api: SignedClient) -> None:
    response = api.client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert problem(response)["type"].endswith("/not-found")


def test_server_error_is_a_problem_without_trace(api: SignedClient, monkeypatch) -> None:
    from apps.rooms import views

    def explode(**kwargs):
        raise RuntimeError("boom: internal detail")

    monkeypatch.setattr(views, "mint_token", explode)
    response = api.post_json("/v1/token", {**BASE, "role": "host"})
    assert response.status_code == 500
    body = problem(response)
    assert "boom" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["type"].endswith("/internal-error")


def test_shared_serializer_fields_keep_no_state_between_requests() -> None:
    """TokenRequestSerializer binds its fields once per class; instances must still be independent."""
    from apps.rooms.serializers import TokenRequestSerializer

    bad = TokenRequestSerializer(data={"roomId": "r", "role": "nope"})
    good = TokenRequestSerializer(data={**BASE, "role": "viewer", "displayName": "X"})
    assert not bad.is_valid()
    assert good.is_valid(), good.errors
    assert set(bad.errors) == {"userId", "role"}
    assert good.to_token_args()["role"] == "viewer"
    assert good.fields is bad.fields
    with pytest.raises(TypeError):
        TokenRequestSerializer(data={}, partial=True)
