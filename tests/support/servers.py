"""Real servers for end-to-end tests, as production runs them: the WSGI app under granian, the Whisper service,
moto's S3 server."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
WHISPER_TOKEN = "test-whisper-token"  # the bearer token whisper_service() is given by the tests that need one


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment() -> dict[str, str]:
    """The test process's settings for a child process: same (test) database, Redis and secrets."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="rtcstack_site.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        LIVEKIT_API_KEY=settings.LIVEKIT_API_KEY,
        LIVEKIT_API_SECRET=settings.LIVEKIT_API_SECRET,
        LIVEKIT_PUBLIC_URL=settings.LIVEKIT_PUBLIC_URL,
        LOG_LEVEL="WARNING",
    )
    return env


def embedded_environment(var_dir: Path) -> dict[str, str]:
    """A child process in embedded mode (./run.sh): no DATABASE_URL nor REDIS_URL, its files under var_dir."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG="1", RTCSTACK_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="rtcstack_site.settings")
    return env


@contextmanager
def granian_wsgi(workers: int = 2) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--blocking-threads", "1", "--log-level", "warning",
        "rtcstack_site.wsgi:application",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=server_environment())
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base_url + "/v1/health", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("granian did not start")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def moto_s3(bucket: str = "recordings") -> Iterator[dict[str, str]]:
    """A real S3-compatible server on loopback (moto's server mode) with one bucket; yields S3_* settings."""
    import boto3

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(endpoint, timeout=1)
                break
            except (requests.ConnectionError, requests.Timeout):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        config = {
            "S3_ENDPOINT_URL": endpoint,
            "S3_BUCKET": bucket,
            "S3_ACCESS_KEY_ID": "testing",
            "S3_SECRET_ACCESS_KEY": "testing-secret",
            "S3_REGION": "us-east-1",
        }
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing-secret",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)  # fmt: skip
        yield config
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def whisper_service(*, ready_status: int = 200, **env: str) -> Iterator[str]:
    """`python -m speech.service` on a free port; yields its URL once /health says ready_status."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPER_", "STT_"))}
    environ.update(env)
    command = [sys.executable, "-m", "speech.service", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=environ, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"speech.service exited ({process.returncode}): {log.read().decode()}")
                try:
                    if requests.get(f"{url}/health", timeout=1).status_code == ready_status:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("speech.service did not become ready in 60s")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
