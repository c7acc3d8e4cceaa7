"""A newcomer's first hour (issue 11, items 18 and 19): ./run.sh, then the README's manage.py commands, the start
page, the admin's name and links, and secrets that cannot be decrypted."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core import checks
from django.test import Client

from apps.apikeys import keystore, services
from apps.apikeys.signer import RTCstackAuth
from tests.conftest import SignedClient, problem
from tests.support.markers import slow_fixture
from tests.support.servers import ROOT, free_port

TOKEN_BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}


# --- ./run.sh, then manage.py ------------------------------------------------------------------------------


def newcomer_environment(var_dir: Path) -> dict[str, str]:
    """A shell on a fresh checkout: nothing configured (no DEBUG, SECRET_KEY, DATABASE_URL or REDIS_URL)."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "RTCSTACK_VAR_DIR": str(var_dir)}


@pytest.fixture(scope="module")
@slow_fixture
def run_sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """./run.sh as the README says, with its data in a fresh var/ directory; (URL, var dir, its output)."""
    tmp_path = tmp_path_factory.mktemp("run_sh")
    var_dir, output = tmp_path / "var", tmp_path / "run.log"
    port = free_port()
    with output.open("w") as log:
        process = subprocess.Popen(
            ["./run.sh", "--port", str(port), "--ws-port", str(free_port())],
            cwd=ROOT, env=newcomer_environment(var_dir), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # pip checks the requirements, then migrations on a new SQLite file
        while True:
            try:
                if requests.get(url + "/v1/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        yield url, var_dir, output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_manage_py_commands_after_run_sh_use_its_settings(run_sh: tuple[str, Path, Path]) -> None:
    url, var_dir, _ = run_sh
    created = subprocess.run(
        [".venv/bin/python", "manage.py", "createapikey", "--name", "My backend", "--scopes", "token"],
        cwd=ROOT, env=newcomer_environment(var_dir), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout.strip().splitlines()[-1])
    # The key works against the running server: both encrypt and decrypt with the one generated SECRET_KEY.
    auth = RTCstackAuth(key["keyId"], key["secret"])
    response = requests.post(url + "/v1/token", json=TOKEN_BODY, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    dev_env = (var_dir / "dev.env").read_text()
    assert "DEBUG=1" in dev_env
    assert "SECRET_KEY=" in dev_env
    assert (var_dir / "dev.env").stat().st_mode & 0o077 == 0  # readable by its owner only


def test_run_sh_prints_no_warning_a_user_cannot_act_on(run_sh: tuple[str, Path, Path]) -> None:
    url, _, output = run_sh
    assert requests.get(url + "/", timeout=10).status_code == 200
    deadline = time.monotonic() + 60
    while "celery@" not in output.read_text() or " ready." not in output.read_text():  # the worker has started
        assert time.monotonic() < deadline, output.read_text()
        time.sleep(0.5)
    lines = output.read_text().splitlines()
    warnings = [line for line in lines if "warning" in line.lower() or "deprecat" in line.lower()]
    # Celery's one warning is actionable (this machine runs the tests as root; don't run the platform so).
    assert [line for line in warnings if "superuser privileges" not in line] == [], "\n".join(lines)
    assert not [line for line in lines if "AXES: BEGIN" in line or "not supported on WSGI" in line]


# --- Secrets the server cannot decrypt -----------------------------------------------------------------------


def test_a_secret_encrypted_with_another_key_is_a_503_problem(api: SignedClient, settings: Any) -> None:
    settings.SECRET_KEY = "another-secret-key-than-the-one-the-api-key-was-created-with-0123456789"
    keystore.clear()
    response = api.post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 503
    body = problem(response)
    assert body["type"].endswith("/undecryptable-secret")
    assert "API_KEY_ENCRYPTION_KEYS" in body["detail"]
    assert "SECRET_KEY" in body["detail"]


def test_a_system_check_names_the_keys_that_do_not_decrypt(db: None, settings: Any) -> None:
    kept, _ = services.create_api_key("kept", ["token"])
    settings.API_KEY_ENCRYPTION_KEYS = ["dGhpcy1pcy1hLW5ldy1mZXJuZXQta2V5LTAxMjM0NTY="]  # not the key it was made with
    found = [m for m in checks.run_checks(databases=["default"]) if m.id == "apikeys.W002"]
    assert len(found) == 1
    assert kept.key_id in found[0].msg
    assert "API_KEY_ENCRYPTION_KEYS" in found[0].hint
    settings.API_KEY_ENCRYPTION_KEYS = []
    assert not [m for m in checks.run_checks(databases=["default"]) if m.id == "apikeys.W002"]


# --- The start page and the admin ----------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_the_start_page_says_where_everything_is(db: None, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    response = Client().get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for link in ('href="/admin/"', 'href="/dashboard/"', 'href="/v1/docs"'):
        assert link in html
    assert "RTCstack" in html


def test_the_admin_is_rtcstacks_and_view_site_opens_a_page(db: None) -> None:
    login = Client().get("/admin/login/").content.decode()
    assert "RTCstack administration" in login
    assert "Django administration" not in login
    assert '<link rel="icon" href="data:,">' in login  # browsers ask for no /favicon.ico (a 404 log line each)
    operator = Client()
    operator.force_login(get_user_model().objects.create_superuser("operator", "op@example.com", "pw-long-enough-1"))
    index = operator.get("/admin/").content.decode()
    assert "<title>Site administration | RTCstack admin</title>" in index
    assert '<a href="/">View site</a>' in index
    assert operator.get("/").status_code == 200
