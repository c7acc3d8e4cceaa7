"""End to end over a real WSGI server (granian, two worker processes), as app backends see it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from apps.apikeys import services
from apps.apikeys.models import ApiKey
from apps.apikeys.signer import RTCstackAuth, signed_headers
from tests.support.servers import ROOT, granian_wsgi, server_environment

pytestmark = pytest.mark.slow  # granian worker processes

TOKEN_BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> str:
    with granian_wsgi(workers=2) as url:
        yield url


@pytest.fixture
def key(transactional_db) -> tuple[str, str]:
    created, secret = services.create_api_key("e2e", ["token"])
    return created.key_id, secret


def readme_example(language: str) -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- example:{language} -->\n```\w+\n(.*?)```", readme, re.DOTALL)
    assert match, f"README has no {language} example"
    return match.group(1)


def test_requests_signer_against_real_server(server: str, key: tuple[str, str]) -> None:
    response = requests.post(server + "/v1/token?source=e2e", json=TOKEN_BODY, auth=RTCstackAuth(*key), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["url"] == "wss://livekit.test.example"


def test_same_request_twice_is_refused_the_second_time(server: str, key: tuple[str, str]) -> None:
    body = json.dumps(TOKEN_BODY).encode()
    headers = {"Content-Type": "application/json", **signed_headers(*key, "POST", "/v1/token", body)}
    first = requests.post(server + "/v1/token", data=body, headers=headers, timeout=10)
    # The two worker processes share the replay guard in Redis, so whichever one answers refuses it.
    second = requests.post(server + "/v1/token", data=body, headers=headers, timeout=10)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.headers["Content-Type"] == "application/problem+json"
    assert second.json()["type"].endswith("/replayed-request")


def test_revocation_reaches_every_worker_process_at_once(server: str, key: tuple[str, str]) -> None:
    auth = RTCstackAuth(*key)
    for i in range(8):  # warm both workers' key caches
        payload = {**TOKEN_BODY, "userId": f"warm{i}"}
        assert requests.post(server + "/v1/token", json=payload, auth=auth, timeout=10).status_code == 200
    services.revoke(ApiKey.objects.get(key_id=key[0]))  # commits at once (transactional_db): signal → Redis
    for i in range(8):
        payload = {**TOKEN_BODY, "userId": f"after{i}"}
        response = requests.post(server + "/v1/token", json=payload, auth=auth, timeout=10)
        assert response.status_code == 401
        assert response.json()["type"].endswith("/revoked-key")


def test_rotation_reaches_every_worker_process_at_once(server: str, key: tuple[str, str]) -> None:
    def post(auth: RTCstackAuth, user: str) -> int:
        return requests.post(
            server + "/v1/token", json={**TOKEN_BODY, "userId": user}, auth=auth, timeout=10
        ).status_code

    old = RTCstackAuth(*key)
    assert [post(old, f"w{i}") for i in range(8)] == [200] * 8
    new = RTCstackAuth(key[0], services.rotate_secret(ApiKey.objects.get(key_id=key[0])))
    assert [post(old, f"o{i}") for i in range(8)] == [401] * 8
    assert [post(new, f"n{i}") for i in range(8)] == [200] * 8


def test_readme_python_example_runs(server: str, key: tuple[str, str], tmp_path: Path) -> None:
    """As an app backend runs it: its own directory, the signer copied in as the README says, nothing else."""
    assert "copy it into your backend as `rtcstack_signer.py`" in (ROOT / "README.md").read_text()
    shutil.copy(ROOT / "apps" / "apikeys" / "signer.py", tmp_path / "rtcstack_signer.py")
    script = tmp_path / "example.py"
    script.write_text(readme_example("python"))
    env = {"PATH": os.environ["PATH"], "RTCSTACK_URL": server, "RTCSTACK_KEY_ID": key[0], "RTCSTACK_SECRET": key[1]}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200 wss://livekit.test.example"


def test_readme_node_example_runs(server: str, key: tuple[str, str], tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is required for this test (.ci/run installs it)"
    script = tmp_path / "example.mjs"
    script.write_text(readme_example("node"))
    env = {**os.environ, "RTCSTACK_URL": server, "RTCSTACK_KEY_ID": key[0], "RTCSTACK_SECRET": key[1]}
    result = subprocess.run([node, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200 wss://livekit.test.example"


def test_createapikey_cli_prints_json_last(transactional_db, server: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "createapikey", "--name", "cli", "--scopes", "token"],
        cwd=ROOT, env=server_environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout.strip().splitlines()[-1])
    auth = RTCstackAuth(created["keyId"], created["secret"])
    assert requests.post(server + "/v1/token", json=TOKEN_BODY, auth=auth, timeout=10).status_code == 200
