"""Live transcription when Redis fails for real: a throwaway redis-server killed and restarted (with its data
gone, or kept by AOF as docker-compose runs it), the real `manage.py persistlive` process, and the agent's
real LiveSession and sink writing finals (LiveKit stood in by tests/support/fakes.py, as in test_agent_worker)."""

import asyncio
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from apps.core.redis import get_redis
from apps.transcription.models import Segment
from speech.livestore import ACTIVE_ROOMS, AgentStore, SessionRecord, session_key
from tests.conftest import SignedClient
from tests.support.fakes import ROOM, Harness, final
from tests.support.servers import free_port
from tests.support.workers import live_persister

pytestmark = pytest.mark.slow  # redis-server and persister processes, killed and restarted

START = f"/v1/rooms/{ROOM}/transcription/start"
STOP = f"/v1/rooms/{ROOM}/transcription/stop"
LINES = 500


class ThrowawayRedis:
    """A redis-server of the test's own on a free loopback port, which the test can kill and start again."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.directory = directory
        self.options = options
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.directory.mkdir(exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        self.process = subprocess.Popen([*command, "--save", "", *self.options], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not answer"
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown (and no last save)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self, *, keep_data: bool) -> None:
        self.kill()
        if not keep_data:
            shutil.rmtree(self.directory)
        self.start()


@contextmanager
def throwaway_redis(directory: Path, *options: str) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(directory, *options)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Agent:
    """The agent's side of the room in a thread with its own event loop: a LiveSession on the session record
    Redis holds, its sink writing every final to the room's stream."""

    def __enter__(self) -> "Agent":
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agent", daemon=True)
        self.thread.start()
        self.harness: Harness = self.call(self._join())
        return self

    async def _join(self) -> Harness:
        store = AgentStore.from_url(settings.REDIS_URL)
        record = await store.session(ROOM)
        await store.close()
        harness = Harness(record)
        harness.room.join("bob", "Bob")
        harness.launch()
        return harness

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def say(self, indexes: Iterable[int], pause: float = 0.0) -> None:
        """Final lines as the core emits them (the sink queues them while Redis is down)."""

        async def speak() -> None:
            for index in indexes:
                await self.harness.session.sink(final(index))
                await asyncio.sleep(pause)

        self.call(speak(), timeout=120)

    @property
    def running(self) -> bool:
        return not self.harness.task.done()

    def finished(self, timeout: float = 20) -> str:
        return self.call(self.harness.finished(timeout), timeout + 5)

    def __exit__(self, *exc_info: object) -> None:
        if self.running:
            self.harness.session.end("test over")
            self.finished()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def stored_keys(transcription_id: str) -> list[str]:
    return list(Segment.objects.filter(transcription_id=transcription_id).values_list("segment_key", flat=True))


def wait_for_lines(transcription_id: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (stored := len(stored_keys(transcription_id))) < count:
        assert time.monotonic() < deadline, f"{stored} of {count} lines in PostgreSQL after {timeout} s"
        time.sleep(0.05)


def every_line() -> list[str]:
    return sorted(final(index).payload["segmentId"] for index in range(LINES))


def start_session(api: SignedClient, livekit) -> str:
    livekit.add_room(ROOM)
    response = api.post_json(START, {})
    assert response.status_code == 201, response.content
    return response.json()["transcriptionId"]


@pytest.mark.django_db(transaction=True)
def test_redis_restarted_without_its_data_the_session_goes_on_and_its_lines_reach_postgresql(
    api: SignedClient, livekit, settings, tmp_path: Path
) -> None:
    with throwaway_redis(tmp_path / "redis", "--appendonly", "no") as server:
        settings.REDIS_URL = server.url
        tid = start_session(api, livekit)
        with live_persister("faults"), Agent() as agent:
            agent.say(range(200))
            wait_for_lines(tid, 200)

            server.restart(keep_data=False)
            agent.say(range(200, LINES), pause=0.002)
            wait_for_lines(tid, LINES)  # while the session runs, not only at stop
            assert agent.running
            record = SessionRecord.from_hash(get_redis().hgetall(session_key(ROOM)))
            assert (record.transcription_id, record.status) == (tid, "active")
            assert get_redis().sismember(ACTIVE_ROOMS, ROOM)

            assert api.post_json(STOP, {}).status_code == 200
            assert agent.finished() == "the transcription is stopped"
    assert sorted(stored_keys(tid)) == every_line()


@pytest.mark.django_db(transaction=True)
def test_with_aof_as_compose_runs_it_a_redis_crash_mid_call_loses_no_line(
    api: SignedClient, livekit, settings, tmp_path: Path
) -> None:
    with throwaway_redis(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "everysec") as server:
        settings.REDIS_URL = server.url
        tid = start_session(api, livekit)
        with live_persister("faults"), Agent() as agent:
            speaking = threading.Thread(target=agent.say, args=(range(LINES), 0.004))
            speaking.start()
            wait_for_lines(tid, 150)
            server.restart(keep_data=True)  # killed while the agent writes and the persister reads
            speaking.join(timeout=120)
            wait_for_lines(tid, LINES)
            assert agent.running
    assert sorted(stored_keys(tid)) == every_line()
