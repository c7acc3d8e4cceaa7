"""The Channels layer is Redis when REDIS_URL is set and in-memory otherwise (the embedded default)."""

import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tests.support.servers import ROOT, embedded_environment


def round_trip() -> dict:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("probe", channel)
    async_to_sync(layer.group_send)("probe", {"type": "probe.message", "text": "hello"})
    message = async_to_sync(layer.receive)(channel)
    async_to_sync(layer.group_discard)("probe", channel)
    return message


def test_redis_channel_layer_delivers_group_messages() -> None:
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    assert round_trip() == {"type": "probe.message", "text": "hello"}


EMBEDDED_PROBE = """
import django
django.setup()
from django.conf import settings
from django.core.cache import caches
from channels.layers import get_channel_layer
from tests.platform.test_channel_layer import round_trip
assert round_trip()["text"] == "hello"
print(type(get_channel_layer()).__name__, type(caches["default"]).__name__, settings.CELERY_BROKER_URL)
"""


@pytest.mark.slow  # a Python process
def test_embedded_defaults_without_redis(tmp_path) -> None:
    env = embedded_environment(tmp_path)
    result = subprocess.run([sys.executable, "-c", EMBEDDED_PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InMemoryChannelLayer", "LocMemCache", "filesystem://localhost/"]


QUEUE_PROBE = """
import django
django.setup()
from rtcstack_site.celery import app
app.send_task("probe.noop")
"""


@pytest.mark.slow  # a Python process
def test_embedded_celery_keeps_its_files_under_the_var_dir(tmp_path) -> None:
    """kombu's filesystem transport writes exchange tables to ./control unless told otherwise: a job queued from
    another working directory must not leave files there."""
    var_dir, cwd = tmp_path / "var", tmp_path / "cwd"
    (var_dir / "celery" / "queue").mkdir(parents=True)  # as `serve` does
    cwd.mkdir()
    env = embedded_environment(var_dir) | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", QUEUE_PROBE], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert list(cwd.iterdir()) == []
    assert (var_dir / "celery" / "control" / "celery.exchange").exists()
