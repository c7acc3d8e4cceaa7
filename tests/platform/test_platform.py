"""The run command's embedded set-up (SQLite, no Redis) and the production settings checks."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from cryptography.fernet import Fernet
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from apps.apikeys.signer import RTCstackAuth
from tests.support.servers import ROOT, embedded_environment, free_port

TOKEN_BODY = {"roomId": "r", "userId": "u", "role": "host"}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def dashboard_socket_close_code(url: str, origin: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(url, origin=origin, open_timeout=5) as socket, pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=5)
            return closed.value.rcvd.code
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the WebSocket server did not start"
            time.sleep(0.3)


@pytest.mark.slow  # a manage.py process
def test_serve_runs_api_admin_websockets_and_worker_on_sqlite_without_redis(tmp_path) -> None:
    env = embedded_environment(tmp_path)
    port, ws_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--ws-port", str(ws_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                health = requests.get(base + "/v1/health", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.3)
        assert health.status_code == 200
        assert health.json()["checks"]["database"] == "ok"
        assert health.json()["checks"]["redis"] == "not_configured"
        assert (tmp_path / "db.sqlite3").exists()
        assert requests.get(base + "/admin/login/", timeout=5).status_code == 200
        assert requests.get(base + "/static/admin/css/base.css", timeout=5).status_code == 200
        # The dashboard's WebSocket server answers (and, logged out, closes with the policy code).
        assert dashboard_socket_close_code(f"ws://127.0.0.1:{ws_port}/ws/dashboard/rooms/", origin=base) == 1008

        created = json.loads(manage("createapikey", "--name", "local", env=env).stdout.strip().splitlines()[-1])
        auth = RTCstackAuth(created["keyId"], created["secret"])
        body = json.dumps(TOKEN_BODY).encode()
        prepared = requests.Request(
            "POST", base + "/v1/token", data=body, headers={"Content-Type": "application/json"}, auth=auth
        ).prepare()
        with requests.Session() as session:
            assert session.send(prepared).status_code == 200
            replay = session.send(prepared)  # the in-process replay guard refuses it too
        assert replay.status_code == 401
        assert replay.json()["type"].endswith("/replayed-request")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "generated password, shown only this once" in output
    assert re.search(r"celery@\S+ ready", output)  # the worker ran
    assert process.returncode == 0


def production_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_SETTINGS"))}
    env.update(
        DEBUG="0",
        SECRET_KEY="x" * 20 + "-production-secret-key-with-enough-entropy-9f8e7d6c5b4a",
        ALLOWED_HOSTS="rtc.example.com",
        API_KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        LIVEKIT_API_KEY="APIprod",
        LIVEKIT_API_SECRET="prod-livekit-secret-0123456789abcdef",
    )
    return env


@pytest.mark.slow  # a manage.py process
def test_check_deploy_is_clean_with_production_values() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow  # a manage.py process
def test_check_deploy_warns_without_an_encryption_key() -> None:
    env = production_environment()
    del env["API_KEY_ENCRYPTION_KEYS"]
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "apikeys.W001" in result.stdout + result.stderr


@pytest.mark.slow  # a manage.py process
def test_invalid_encryption_key_is_an_error() -> None:
    env = {**production_environment(), "API_KEY_ENCRYPTION_KEYS": "not-a-fernet-key"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "apikeys.E001" in result.stdout + result.stderr


@pytest.mark.slow  # a manage.py process
def test_secret_key_is_required_without_debug() -> None:
    env = production_environment()
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_embedded_guard_refuses_replays_without_redis(settings, api) -> None:
    settings.REDIS_URL = ""
    headers = api.headers("POST", "/v1/token", json.dumps(TOKEN_BODY).encode())
    body = json.dumps(TOKEN_BODY).encode()
    assert api.send("POST", "/v1/token", body, headers=headers).status_code == 200
    assert api.send("POST", "/v1/token", body, headers=headers).status_code == 401


def test_rotating_the_encryption_key_keeps_old_secrets_readable(settings, db) -> None:
    from apps.apikeys import services
    from apps.core.crypto import decrypt_secret

    old_key = Fernet.generate_key().decode()
    settings.API_KEY_ENCRYPTION_KEYS = [old_key]
    key, secret = services.create_api_key("x")
    settings.API_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    assert decrypt_secret(key.secret_encrypted) == secret
