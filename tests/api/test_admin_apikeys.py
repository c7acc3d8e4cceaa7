"""Operators create, revoke and rotate API keys in Django admin; the secret is shown exactly once."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.apikeys.models import ApiKey
from tests.conftest import Credentials, SignedClient

TOKEN_BODY = {"roomId": "r", "userId": "u", "name": "U", "role": "host"}


@pytest.fixture
def operator(db) -> Client:
    user = get_user_model().objects.create_superuser("operator", "op@example.com", "correct horse battery")
    client = Client()
    client.force_login(user)
    return client


def shown_secret(html: str) -> tuple[str, str]:
    key_id = re.search(r'<code id="key-id">([^<]+)</code>', html).group(1)
    secret = re.search(r'<code id="secret">([^<]+)</code>', html).group(1)
    return key_id, secret


def secret_page(operator: Client, response) -> str:
    """The form's POST redirects to the page that shows the secret (POST/redirect/GET)."""
    assert response.status_code == 302, response.content[:2000]
    assert re.fullmatch(r"/admin/apikeys/apikey/\d+/secret/", response["Location"])
    page = operator.get(response["Location"])
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    return page.content.decode()


def create_through_admin(operator: Client, **fields) -> tuple[str, str]:
    data = {"name": "Billing backend", "scopes": ["token"], "active": "on", "rate_limit_per_minute": "100", **fields}
    return shown_secret(secret_page(operator, operator.post("/admin/apikeys/apikey/add/", data)))


def test_create_shows_the_secret_once_and_it_signs(operator: Client) -> None:
    key_id, secret = create_through_admin(operator)
    key = ApiKey.objects.get(key_id=key_id)
    assert key.name == "Billing backend"
    assert key.scopes == ["token"]
    assert key.rate_limit_per_minute == 100
    assert secret not in key.secret_encrypted
    change_page = operator.get(f"/admin/apikeys/apikey/{key.pk}/change/").content.decode()
    assert key_id in change_page
    assert secret not in change_page
    assert secret not in operator.get("/admin/apikeys/apikey/").content.decode()
    assert SignedClient(Credentials(key_id, secret)).post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_reloading_the_secret_page_neither_posts_again_nor_shows_the_secret(operator: Client) -> None:
    data = {"name": "Billing backend", "scopes": ["token"], "active": "on", "rate_limit_per_minute": "100"}
    created = operator.post("/admin/apikeys/apikey/add/", data)
    assert created.status_code == 302
    secret_url = created["Location"]
    session_meanwhile = str(dict(operator.session))
    _, secret = shown_secret(operator.get(secret_url).content.decode())
    reloaded = operator.get(secret_url, follow=True)
    assert ApiKey.objects.count() == 1
    html = reloaded.content.decode()
    assert secret not in html
    assert reloaded.redirect_chain[-1][0] == f"/admin/apikeys/apikey/{ApiKey.objects.get().pk}/change/"
    assert "shown once" in html
    assert secret not in session_meanwhile  # kept encrypted until shown


def test_rotating_redirects_to_the_new_secret_once(operator: Client, make_key) -> None:
    key = ApiKey.objects.get(key_id=make_key().key_id)
    rotated = operator.post(f"/admin/apikeys/apikey/{key.pk}/rotate/")
    assert rotated.status_code == 302
    assert rotated["Location"] == f"/admin/apikeys/apikey/{key.pk}/secret/"
    assert '<code id="secret">' in operator.get(rotated["Location"]).content.decode()
    assert operator.get(rotated["Location"]).status_code == 302


def test_create_requires_a_scope(operator: Client) -> None:
    response = operator.post(
        "/admin/apikeys/apikey/add/", {"name": "x", "scopes": [], "active": "on", "rate_limit_per_minute": "1"}
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_from_the_change_page(operator: Client, run_on_commit) -> None:
    key_id, secret = create_through_admin(operator)
    client = SignedClient(Credentials(key_id, secret))
    assert client.post_json("/v1/token", TOKEN_BODY).status_code == 200
    key = ApiKey.objects.get(key_id=key_id)
    with run_on_commit():
        response = operator.post(f"/admin/apikeys/apikey/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert not key.active
    assert key.revoked_at is not None
    refused = client.post_json("/v1/token", TOKEN_BODY)
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/revoked-key")


def test_revoke_action_on_the_list(operator: Client, make_key, run_on_commit) -> None:
    first, second, kept = make_key("a"), make_key("b"), make_key("c")
    ids = list(ApiKey.objects.filter(key_id__in=[first.key_id, second.key_id]).values_list("pk", flat=True))
    with run_on_commit():
        response = operator.post(
            "/admin/apikeys/apikey/", {"action": "revoke_selected", "_selected_action": [str(pk) for pk in ids]}
        )
    assert response.status_code == 302
    assert set(ApiKey.objects.filter(active=False).values_list("key_id", flat=True)) == {first.key_id, second.key_id}
    assert SignedClient(first).post_json("/v1/token", TOKEN_BODY).status_code == 401
    assert SignedClient(kept).post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_rotate_shows_new_secret_and_old_one_stops(operator: Client, run_on_commit) -> None:
    key_id, old_secret = create_through_admin(operator)
    old_client = SignedClient(Credentials(key_id, old_secret))
    assert old_client.post_json("/v1/token", TOKEN_BODY).status_code == 200
    key = ApiKey.objects.get(key_id=key_id)
    confirm = operator.get(f"/admin/apikeys/apikey/{key.pk}/rotate/")
    assert confirm.status_code == 200
    assert "stops working" in confirm.content.decode()
    with run_on_commit():
        rotated = operator.post(f"/admin/apikeys/apikey/{key.pk}/rotate/")
    same_id, new_secret = shown_secret(secret_page(operator, rotated))
    assert same_id == key_id
    assert new_secret != old_secret
    assert old_client.post_json("/v1/token", TOKEN_BODY).status_code == 401
    assert SignedClient(Credentials(key_id, new_secret)).post_json("/v1/token", TOKEN_BODY).status_code == 200


def test_search_and_filters(operator: Client, make_key) -> None:
    make_key("Billing backend")
    make_key("Video app")
    page = operator.get("/admin/apikeys/apikey/", {"q": "billing"}).content.decode()
    assert "Billing backend" in page
    assert "Video app" not in page
    assert operator.get("/admin/apikeys/apikey/", {"active__exact": "1"}).status_code == 200
    assert operator.get("/admin/apikeys/apikey/", {"expiry": "expired"}).status_code == 200


def test_staff_without_permission_cannot_rotate(db, make_key) -> None:
    creds = make_key()
    staff = get_user_model().objects.create_user("viewer", password="pw-12345-long", is_staff=True)
    client = Client()
    client.force_login(staff)
    key = ApiKey.objects.get(key_id=creds.key_id)
    assert client.post(f"/admin/apikeys/apikey/{key.pk}/rotate/").status_code == 403
    assert client.post(f"/admin/apikeys/apikey/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.active
