import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.apikeys.models import ApiKey
from tests.conftest import Credentials, SignedClient

TOKEN_BODY = {"roomId": "r", "userId": "u", "role": "viewer"}


def run(*args: str) -> dict:
    out = io.StringIO()
    call_command("createapikey", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db
def test_createapikey_prints_usable_credentials_as_json() -> None:
    created = run("--name", "Web app", "--scopes", "token", "rooms")
    assert set(created) == {"keyId", "secret"}
    key = ApiKey.objects.get(key_id=created["keyId"])
    assert key.scopes == ["token", "rooms"]
    assert created["secret"] not in key.secret_encrypted
    assert (
        SignedClient(Credentials(created["keyId"], created["secret"])).post_json("/v1/token", TOKEN_BODY).status_code
        == 200
    )


@pytest.mark.django_db
def test_createapikey_imports_existing_credentials() -> None:
    created = run("--name", "Legacy", "--key-id", "legacy-key", "--secret", "legacy-secret-from-node-0001")
    assert created == {"keyId": "legacy-key", "secret": "legacy-secret-from-node-0001"}
    client = SignedClient(Credentials("legacy-key", "legacy-secret-from-node-0001"))
    assert client.post_json("/v1/token", TOKEN_BODY).status_code == 200


@pytest.mark.django_db
def test_createapikey_reads_secret_from_stdin(monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("secret-from-stdin-000000000\n"))
    created = run("--name", "Piped", "--key-id", "piped", "--secret", "-")
    assert created["secret"] == "secret-from-stdin-000000000"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x", "--key-id", "only-id"], "both a key ID and a secret"),
        (["--name", "x", "--key-id", "k", "--secret", "short"], "at least 16"),
        (["--name", "x", "--expires-at", "tomorrow"], "ISO 8601"),
    ],
)
def test_createapikey_rejects_bad_input(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_createapikey_refuses_duplicate_key_id() -> None:
    run("--name", "x", "--key-id", "dup", "--secret", "0123456789abcdef0")
    with pytest.raises(CommandError, match="already exists"):
        run("--name", "y", "--key-id", "dup", "--secret", "0123456789abcdef1")


@pytest.mark.django_db
def test_ensureoperator_creates_one_account_once(monkeypatch) -> None:
    monkeypatch.delenv("RTCSTACK_ADMIN_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("ensureoperator", stdout=out)
    password = out.getvalue().split("shown only this once: ")[1].strip()
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser
    assert user.check_password(password)
    again = io.StringIO()
    call_command("ensureoperator", stdout=again)
    assert again.getvalue() == ""
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_ensureoperator_uses_the_configured_password(monkeypatch) -> None:
    monkeypatch.setenv("RTCSTACK_ADMIN_PASSWORD", "configured-password-123")
    out = io.StringIO()
    call_command("ensureoperator", stdout=out)
    assert "configured-password-123" not in out.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("configured-password-123")
