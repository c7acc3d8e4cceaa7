"""Every way a signed request can be refused, and the ways it must succeed (SPEC §4)."""

import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils import timezone

from apps.apikeys import guard, services
from apps.apikeys.models import ApiKey
from apps.apikeys.signer import compute_signature, signed_headers
from tests.conftest import SignedClient, as_meta, problem

TOKEN_BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}


def body_bytes(payload: dict = TOKEN_BODY) -> bytes:
    return json.dumps(payload).encode()


def kind(response) -> str:
    return problem(response)["type"].rsplit("/", 1)[-1]


def test_signed_request_is_accepted(api: SignedClient) -> None:
    response = api.post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 200, response.content
    assert response.json()["token"]


@pytest.mark.parametrize("missing", ["X-Api-Key", "X-RTCstack-Timestamp", "X-RTCstack-Signature"])
def test_missing_header_is_named(api: SignedClient, missing: str) -> None:
    headers = api.headers("POST", "/v1/token", body_bytes())
    del headers[missing]
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "missing-credentials"
    assert missing in problem(response)["detail"]
    assert response["WWW-Authenticate"].startswith("RTCstack-HMAC")


def test_unknown_key(api: SignedClient) -> None:
    headers = api.headers("POST", "/v1/token", body_bytes())
    headers["X-Api-Key"] = "rk_doesnotexist"
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "unknown-key"


def test_wrong_secret(api: SignedClient, credentials) -> None:
    forged = type(credentials)(credentials.key_id, "not-the-secret-at-all-0123456789")
    response = api.send("POST", "/v1/token", body_bytes(), credentials=forged)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"


def test_malformed_signature_header(api: SignedClient) -> None:
    headers = api.headers("POST", "/v1/token", body_bytes())
    headers["X-RTCstack-Signature"] = headers["X-RTCstack-Signature"].removeprefix("sha256=")
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"


@pytest.mark.parametrize(("offset", "expected"), [(-301, "stale-timestamp"), (301, "future-timestamp")])
def test_timestamp_outside_window(api: SignedClient, offset: int, expected: str) -> None:
    response = api.send("POST", "/v1/token", body_bytes(), timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert kind(response) == expected


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamp_inside_window(api: SignedClient, offset: int) -> None:
    response = api.send("POST", "/v1/token", body_bytes(), timestamp=int(time.time()) + offset)
    assert response.status_code == 200, response.content


def test_non_numeric_timestamp(api: SignedClient) -> None:
    headers = api.headers("POST", "/v1/token", body_bytes())
    headers["X-RTCstack-Timestamp"] = "yesterday"
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "invalid-timestamp"


def test_replayed_request_is_refused(api: SignedClient) -> None:
    headers = api.headers("POST", "/v1/token", body_bytes())
    assert api.send("POST", "/v1/token", body_bytes(), headers=headers).status_code == 200
    replay = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert replay.status_code == 401
    assert kind(replay) == "replayed-request"
    assert "fresh timestamp" in problem(replay)["detail"]


def test_retry_with_fresh_timestamp_is_accepted(api: SignedClient) -> None:
    now = int(time.time())
    assert api.send("POST", "/v1/token", body_bytes(), timestamp=now).status_code == 200
    assert api.send("POST", "/v1/token", body_bytes(), timestamp=now + 1).status_code == 200


def test_body_tamper_is_refused(api: SignedClient) -> None:
    """A viewer's signature must not carry a host request (the reference implementation's flaw)."""
    viewer = body_bytes({**TOKEN_BODY, "role": "viewer"})
    host = body_bytes({**TOKEN_BODY, "role": "host"})
    headers = api.headers("POST", "/v1/token", viewer)
    response = api.send("POST", "/v1/token", host, headers=headers)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"


def test_signature_over_empty_body_does_not_cover_a_body(api: SignedClient) -> None:
    headers = api.headers("POST", "/v1/token", b"")
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"


def test_method_tamper_is_refused(api: SignedClient) -> None:
    headers = api.headers("PUT", "/v1/token", body_bytes())
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"


def test_path_tamper_is_refused(api: SignedClient) -> None:
    headers = api.headers("POST", "/v1/token/refresh", body_bytes())
    response = api.send("POST", "/v1/token", body_bytes(), headers=headers)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"


def test_query_string_is_signed(api: SignedClient) -> None:
    """The signed path includes the query string exactly as sent; changing it breaks the signature."""
    path = "/v1/token?trace=abc&limit=5"
    assert api.send("POST", path, body_bytes()).status_code == 200
    headers = api.headers("POST", path, body_bytes())
    tampered = api.send("POST", "/v1/token?trace=abc&limit=500", body_bytes(), headers=headers)
    assert tampered.status_code == 401
    assert kind(tampered) == "invalid-signature"
    dropped = api.send("POST", "/v1/token", body_bytes(), headers=api.headers("POST", path, body_bytes()))
    assert kind(dropped) == "invalid-signature"


def test_empty_body_get_is_signed_over_the_empty_hash(api: SignedClient) -> None:
    """A GET with no body passes authentication (405 comes after it, from the view)."""
    response = api.send("GET", "/v1/token")
    assert response.status_code == 405
    assert kind(response) == "method-not-allowed"
    unsigned = api.send("GET", "/v1/token", headers={})
    assert unsigned.status_code == 401


def test_revoked_key(api: SignedClient, credentials, run_on_commit) -> None:
    assert api.post_json("/v1/token", TOKEN_BODY).status_code == 200  # the key is now cached
    with run_on_commit():
        services.revoke(ApiKey.objects.get(key_id=credentials.key_id))
    response = api.post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 401
    assert kind(response) == "revoked-key"


def test_expired_key(make_key) -> None:
    creds = make_key(expires_at=timezone.now() - timedelta(seconds=1))
    response = SignedClient(creds).post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 401
    assert kind(response) == "expired-key"


def test_wrong_signature_on_a_revoked_key_does_not_reveal_its_status(api: SignedClient, credentials) -> None:
    """Only the secret's holder may learn that a key was revoked: the signature is checked first."""
    ApiKey.objects.filter(key_id=credentials.key_id).update(active=False)
    forged = type(credentials)(credentials.key_id, "not-the-secret-at-all-0123456789")
    response = api.post_json("/v1/token", TOKEN_BODY, credentials=forged)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"
    assert kind(api.post_json("/v1/token", TOKEN_BODY)) == "revoked-key"


def test_wrong_signature_on_an_expired_key_does_not_reveal_its_status(make_key) -> None:
    creds = make_key(expires_at=timezone.now() - timedelta(seconds=1))
    forged = type(creds)(creds.key_id, "not-the-secret-at-all-0123456789")
    response = SignedClient(forged).post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 401
    assert kind(response) == "invalid-signature"
    assert kind(SignedClient(creds).post_json("/v1/token", TOKEN_BODY)) == "expired-key"


def test_key_with_future_expiry_works(make_key) -> None:
    creds = make_key(expires_at=timezone.now() + timedelta(days=1))
    assert SignedClient(creds).post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_rotated_key_old_secret_stops_at_once(api: SignedClient, credentials, run_on_commit) -> None:
    assert api.post_json("/v1/token", TOKEN_BODY).status_code == 200
    with run_on_commit():
        new_secret = services.rotate_secret(ApiKey.objects.get(key_id=credentials.key_id))
    old = api.post_json("/v1/token", TOKEN_BODY)
    assert old.status_code == 401
    assert kind(old) == "invalid-signature"
    fresh = SignedClient(type(credentials)(credentials.key_id, new_secret))
    assert fresh.post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_new_secret_works_even_when_this_process_has_the_old_one_cached(
    api: SignedClient, credentials, run_on_commit
) -> None:
    """Another process rotated the key: the Redis generation tells this one its cache is stale."""
    assert api.post_json("/v1/token", TOKEN_BODY).status_code == 200
    key = ApiKey.objects.get(key_id=credentials.key_id)
    new_secret = services.assign_new_secret(key)
    ApiKey.objects.filter(pk=key.pk).update(secret_encrypted=key.secret_encrypted)  # no signal, no local eviction
    from apps.apikeys.guard import get_guard

    get_guard().bump(key.key_id)  # what the other process's signal handler does
    fresh = SignedClient(type(credentials)(credentials.key_id, new_secret))
    assert fresh.post_json("/v1/token", TOKEN_BODY).status_code == 200
    assert api.post_json("/v1/token", TOKEN_BODY).status_code == 401


@pytest.mark.parametrize("scopes", [("rooms",), ("recordings", "webhooks")])
def test_missing_scope_is_403(make_key, scopes) -> None:
    response = SignedClient(make_key(scopes=scopes)).post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 403
    assert kind(response) == "insufficient-scope"
    assert "'token'" in problem(response)["detail"]


@pytest.mark.parametrize("scopes", [("token",), ("all",), ("rooms", "token")])
def test_matching_scope_is_allowed(make_key, scopes) -> None:
    assert SignedClient(make_key(scopes=scopes)).post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_rate_limit_returns_429_with_retry_after(make_key) -> None:
    client = SignedClient(make_key(rate_limit_per_minute=3))
    statuses = [client.post_json("/v1/token", {**TOKEN_BODY, "userId": f"u{i}"}).status_code for i in range(4)]
    limited = client.post_json("/v1/token", {**TOKEN_BODY, "userId": "u-last"})
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429
    assert limited.status_code == 429
    assert kind(limited) == "rate-limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_rate_limit_is_per_key(make_key) -> None:
    busy = SignedClient(make_key(rate_limit_per_minute=1))
    other = SignedClient(make_key(rate_limit_per_minute=1))
    assert busy.post_json("/v1/token", TOKEN_BODY).status_code == 200
    assert busy.post_json("/v1/token", {**TOKEN_BODY, "userId": "b"}).status_code == 429
    assert other.post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_forgeries_do_not_spend_the_key_quota(make_key, credentials) -> None:
    creds = make_key(rate_limit_per_minute=1)
    forged = SignedClient(type(creds)(creds.key_id, "wrong-secret-wrong-secret-000"))
    for i in range(3):
        assert forged.post_json("/v1/token", {**TOKEN_BODY, "userId": f"f{i}"}).status_code == 401
    assert SignedClient(creds).post_json("/v1/token", TOKEN_BODY).status_code == 200


@pytest.fixture(params=["redis", "in-process"])
def failure_limits(request, settings, monkeypatch):
    """Small failure limits, counted in Redis or (no REDIS_URL) in the process, as the guard is configured."""
    if request.param == "in-process":
        settings.REDIS_URL = ""
        monkeypatch.setattr(guard, "_memory_guard", guard.MemoryGuard())
    settings.SIGNATURE_FAILURE_LIMIT_PER_IP = 100
    settings.SIGNATURE_FAILURE_LIMIT_PER_KEY = 100
    return settings


def forged(credentials):
    return type(credentials)(credentials.key_id, "wrong-secret-wrong-secret-000")


def post_token_from(address: str, credentials, user: str):
    body = body_bytes({**TOKEN_BODY, "userId": user})
    headers = signed_headers(credentials.key_id, credentials.secret, "POST", "/v1/token", body)
    return Client(REMOTE_ADDR=address).post("/v1/token", body, content_type="application/json", **as_meta(headers))


def assert_failures_limited(response) -> None:
    assert response.status_code == 429, response.content
    assert kind(response) == "rate-limited"
    assert "failed" in problem(response)["detail"]
    assert 1 <= int(response["Retry-After"]) <= 60


def test_failed_signatures_are_limited_per_client_address(failure_limits, credentials) -> None:
    failure_limits.SIGNATURE_FAILURE_LIMIT_PER_IP = 3
    attempts = [post_token_from("203.0.113.7", forged(credentials), f"f{i}").status_code for i in range(3)]
    assert attempts == [401, 401, 401]
    assert_failures_limited(post_token_from("203.0.113.7", forged(credentials), "f3"))
    assert post_token_from("198.51.100.1", forged(credentials), "f4").status_code == 401  # another address
    assert post_token_from("203.0.113.7", credentials, "genuine").status_code == 200  # the real secret still works


def test_failed_signatures_are_limited_per_key_id(failure_limits, credentials, make_key) -> None:
    failure_limits.SIGNATURE_FAILURE_LIMIT_PER_KEY = 3
    attempts = [post_token_from(f"203.0.113.{i}", forged(credentials), f"f{i}").status_code for i in range(3)]
    assert attempts == [401, 401, 401]
    assert_failures_limited(post_token_from("203.0.113.50", forged(credentials), "f3"))
    assert post_token_from("203.0.113.50", forged(make_key("other")), "f4").status_code == 401  # another key
    assert post_token_from("198.51.100.1", credentials, "genuine").status_code == 200


def test_unknown_key_ids_count_against_the_client_address(failure_limits, credentials) -> None:
    failure_limits.SIGNATURE_FAILURE_LIMIT_PER_IP = 2
    unknown = type(credentials)("rk_doesnotexist", credentials.secret)
    assert [post_token_from("203.0.113.9", unknown, f"u{i}").status_code for i in range(2)] == [401, 401]
    assert_failures_limited(post_token_from("203.0.113.9", unknown, "u2"))


def test_limited_address_has_its_upload_refused_before_the_body_is_read(failure_limits, api, credentials) -> None:
    """The upload announces 5 MiB and has sent 200 bytes: refused at once, without reading or hashing it."""
    failure_limits.SIGNATURE_FAILURE_LIMIT_PER_IP = 1
    assert post_token_from("203.0.113.7", forged(credentials), "f0").status_code == 401
    body = encode_multipart(BOUNDARY, {"roomId": "standup"})
    headers = signed_headers(credentials.key_id, credentials.secret, "POST", "/v1/recordings", body)
    response = Client(REMOTE_ADDR="203.0.113.7").generic(
        "POST", "/v1/recordings", body, content_type=MULTIPART_CONTENT, CONTENT_LENGTH=str(5 * 1024 * 1024),
        **as_meta(headers),
    )  # fmt: skip
    assert_failures_limited(response)


def test_genuine_requests_are_not_counted_as_failures(failure_limits, credentials) -> None:
    failure_limits.SIGNATURE_FAILURE_LIMIT_PER_IP = 1
    failure_limits.SIGNATURE_FAILURE_LIMIT_PER_KEY = 1
    assert [post_token_from("203.0.113.7", credentials, f"g{i}").status_code for i in range(5)] == [200] * 5
    assert post_token_from("203.0.113.7", forged(credentials), "f0").status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(api: SignedClient, credentials) -> None:
    assert ApiKey.objects.get(key_id=credentials.key_id).last_used_at is None
    api.post_json("/v1/token", TOKEN_BODY)
    first = ApiKey.objects.get(key_id=credentials.key_id).last_used_at
    assert first is not None
    api.post_json("/v1/token", {**TOKEN_BODY, "userId": "bob"})
    assert ApiKey.objects.get(key_id=credentials.key_id).last_used_at == first


def test_redis_down_is_503_not_500(api: SignedClient, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = api.post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 503
    assert kind(response) == "service-unavailable"
    assert "Redis" in problem(response)["detail"]


def test_secret_is_stored_encrypted(credentials) -> None:
    stored = ApiKey.objects.get(key_id=credentials.key_id).secret_encrypted
    assert credentials.secret not in stored
    assert stored.startswith("gAAAA")  # a Fernet token


def test_signature_scheme_matches_the_documented_canonical_string() -> None:
    """Pinned vector: hex HMAC-SHA256 over METHOD\\nPATH\\nTS\\nhex(sha256(body))."""
    import hashlib
    import hmac

    body = b'{"a":1}'
    canonical = f"POST\n/v1/rooms?limit=5\n1700000000\n{hashlib.sha256(body).hexdigest()}".encode()
    expected = "sha256=" + hmac.new(b"s3cret", canonical, hashlib.sha256).hexdigest()
    assert compute_signature("s3cret", "POST", "/v1/rooms?limit=5", "1700000000", body) == expected
