"""The whole live-caption path on real WebRTC, every process as production runs it.

One stack per module: the LiveKit stand-in (tests/sfu: signalling and media over aiortc, the server API, the
agent-worker endpoint, webhooks) on an ephemeral port; the platform's ASGI app under uvicorn (the ``/v1`` API, the
LiveKit webhook receiver and the dashboard's Channels WebSockets) on the test database and Redis, with LIVEKIT_URL
pointing at the stand-in; the live persister (``manage.py persistlive``); the agent, ``python -m agent`` with its
production settings (the bundled Whisper model in-process) but LiveKit's URL and keys. Participants are the
unmodified LiveKit Python SDK publishing espeak-ng speech as a microphone in real time, with tokens from
``POST /v1/token``.

Every wait is on something arriving (an SDK event, a data message, a WebSocket frame, the stand-in's state, a line
in the agent's log, a row in PostgreSQL polled with a deadline); nothing sleeps in place of synchronising.

Word error rate: tiny.en on these espeak sentences makes 0-2 word errors per sentence when fed directly
(tests/agent/test_agent_core.py); here the audio also goes through Opus twice (the participant's encoder, then the
stand-in's re-encoding for the agent) and LiveKit's resampling to 48 kHz and back. ``MAX_WER`` is the bar the
agent's own tests use: room for an odd word, none for garbage or a lost sentence (one sentence of three missing is a
WER of ~0.3).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.conf import settings
from livekit import api as livekit_api
from livekit.agents.types import (
    ATTRIBUTE_TRANSCRIPTION_FINAL,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    ATTRIBUTE_TRANSCRIPTION_TRACK_ID,
)
from livekit.protocol import agent as agent_proto

from apps.apikeys import services
from apps.apikeys.signer import RTCstackAuth
from apps.transcription.models import Segment
from tests.sfu import LiveKitServer
from tests.support.audio import SENTENCES, normalise, read_wav, speech, utterances, wer
from tests.support.browser import AsgiServer
from tests.support.call import (
    AGENT,
    CallLoop,
    DashboardViewer,
    Participant,
    Received,
    agent_environment,
    kill_tree,
    live_agent,
)
from tests.support.dashboard import session_cookie
from tests.support.livekit_agent_standin import ConnectedWorker, DispatchedJob
from tests.support.servers import server_environment
from tests.support.waiting import wait_until
from tests.support.workers import ChildProcess, live_persister

pytestmark = pytest.mark.slow  # real WebRTC, the agent and its Whisper model, uvicorn and the persister

MAX_WER = 0.2
CAPTION_TIMEOUT = 45  # seconds from the end of a sentence to its caption: generous for a loaded 2-core machine


@dataclass
class Stack:
    """The module's servers; ``agent`` is replaced when a test kills it."""

    livekit: LiveKitServer
    platform: AsgiServer
    agent_env: dict[str, str]
    agent: ChildProcess
    processes: ExitStack

    def wait_for_available_agent(self) -> None:
        """Until the agent's last status update said available with no room running (its load is its rooms out of
        AGENT_MAX_ROOMS): the previous test's job has ended, and the next dispatch is the only one it runs."""
        agents = self.livekit.agents

        def idle() -> list[ConnectedWorker]:
            return [w for w in agents.registered() if w.status == agent_proto.WS_AVAILABLE and w.load == 0]

        agents.wait_for(idle, 60)

    def assigned(self) -> DispatchedJob:
        """The latest dispatch, once the stand-in offered it to the worker: the worker must have taken it."""
        job = self.livekit.dispatched[-1].result(30)
        assert job.assignment is not None, f"the agent did not take the job: {job.availability}"
        return job

    def start_agent(self) -> ChildProcess:
        self.agent = self.processes.enter_context(live_agent(self.agent_env))
        return self.agent


@pytest.fixture(scope="module")
def stack(django_db_setup: None) -> Iterator[Stack]:
    key, secret = settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET
    with ExitStack() as processes:
        platform = AsgiServer({**server_environment(), "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0"})
        livekit = processes.enter_context(LiveKitServer(key, secret, webhook_url=f"{platform.url}/v1/livekit/webhook"))
        platform.env.update(LIVEKIT_URL=livekit.url, LIVEKIT_PUBLIC_URL=livekit.url)
        platform.start()
        processes.callback(platform.stop)
        processes.enter_context(live_persister("e2e-persister"))
        agent_env = agent_environment(livekit.url, key, secret, settings.REDIS_URL)
        stack = Stack(livekit, platform, agent_env, processes.enter_context(live_agent(agent_env)), processes)
        yield stack


@pytest.fixture
def platform_api(stack: Stack, transactional_db: None) -> requests.Session:
    """An app backend's signed session against the platform server."""
    key, secret = services.create_api_key("e2e")
    session = requests.Session()
    session.auth = RTCstackAuth(key.key_id, secret)
    return session


@pytest.fixture
def call() -> Iterator[CallLoop]:
    loop = CallLoop()
    yield loop
    loop.close()


class Room:
    """One room of a test: its participants (tokens from the platform) and its live transcription."""

    def __init__(self, name: str, stack: Stack, api: requests.Session, call: CallLoop) -> None:
        self.name = name
        self.stack = stack
        self.api = api
        self.call = call
        self.participants: dict[str, Participant] = {}
        self.transcription_id = ""

    def url(self, path: str) -> str:
        return f"{self.stack.platform.url}/v1/rooms/{self.name}{path}"

    def join(self, identity: str) -> Participant:
        body = {"roomId": self.name, "userId": identity, "name": identity.title(), "role": "participant"}
        issued = self.api.post(f"{self.stack.platform.url}/v1/token", json=body, timeout=10)
        assert issued.status_code == 200, issued.text
        participant = Participant(self.call, identity)
        participant.join(issued.json()["url"], issued.json()["token"])
        self.participants[identity] = participant
        return participant

    def start(self) -> str:
        """``POST .../transcription/start`` once the agent can take the job; returns the agent's identity once
        it reads the audio of every participant."""
        self.stack.wait_for_available_agent()
        response = self.api.post(self.url("/transcription/start"), json={}, timeout=30)
        assert response.status_code == 201, response.text
        self.transcription_id = response.json()["transcriptionId"]
        self.stack.assigned()
        return self.agent_listening()

    def agent_listening(self, *, not_: str = "") -> str:
        """The agent in the room (another than ``not_``), once its log says it reads every participant's
        microphone."""
        first = next(iter(self.participants.values()))
        identity = first.wait_for_agent("participant_connected", not_=not_)
        for participant in self.participants.values():
            line = f"reading track {participant.track_sid} of {participant.identity}"
            wait_until(lambda line=line: line in self.stack.agent.output(), f"the agent to read {line}", 60)
        return identity

    def stop(self) -> dict[str, Any]:
        response = self.api.post(self.url("/transcription/stop"), json={}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        """Everyone leaves (a session a failed test left running is stopped, so the agent does not linger into the
        next test); returns once the platform has the room_finished webhook, the last write this room causes, so
        the test database's flush does not race the webhook receiver."""
        for participant in self.participants.values():
            participant.leave()
        if self.transcription_id:
            self.api.post(self.url("/transcription/stop"), json={}, timeout=30)
        sent = self.stack.livekit.twirp.webhooks_sent
        wait_until(
            lambda: [d for d in list(sent) if (d.event.event, d.event.room.name) == ("room_finished", self.name)],
            f"the room_finished webhook of {self.name}",
            60,
        )


@pytest.fixture
def room(
    request: pytest.FixtureRequest, stack: Stack, platform_api: requests.Session, call: CallLoop
) -> Iterator[Room]:
    created = Room(request.node.name.removeprefix("test_")[:40].replace("_", "-"), stack, platform_api, call)
    yield created
    print("agent log (tail):\n" + stack.agent.output()[-8000:])  # shown by pytest when the test failed
    created.close()


def say(participant: Participant, *texts: str) -> None:
    """Say the sentences (half a second of silence around each, a second between) and wait until all were said."""
    participant.say(utterances(*texts)).spoken.result(60)


def captions_of(participant: Participant, speaker: str) -> str:
    return " ".join(m["text"] for m in participant.finals() if m["speakerId"] == speaker)


def wait_for_turn(listener: Participant, speaker: str, sentence: str) -> list[dict[str, Any]]:
    """Block until ``listener`` received the caption of ``speaker`` that ends ``sentence`` (its last word): the
    agent finished the turn, whatever pauses cut it into. Returns the speaker's finals so far, in order. How well
    they match what was said is for the test to judge (``MAX_WER``)."""
    last_word = normalise(sentence).split()[-1]

    def heard(messages: list[Received]) -> list[dict[str, Any]]:
        finals = [m.payload for m in messages if m.type == "transcript" and m.payload["speakerId"] == speaker]
        return finals if finals and last_word in normalise(finals[-1]["text"]).split() else []

    return listener.messages.wait_for(heard, f"{speaker}'s caption ending {sentence!r}", CAPTION_TIMEOUT)


def stored(transcription_id: str, count: int) -> list[Segment]:
    """The transcription's segments once PostgreSQL has ``count`` of them (the persister is another process)."""
    return wait_until(
        lambda: (
            (rows := list(Segment.objects.filter(transcription_id=transcription_id).order_by("start_ms")))
            and len(rows) >= count
            and rows
        ),
        f"{count} segments of {transcription_id} in PostgreSQL",
    )


def test_one_speaker_captions_reach_the_room_postgresql_and_the_dashboard_and_stop_makes_the_agent_leave(
    stack: Stack, room: Room, call: CallLoop
) -> None:
    alice = room.join("alice")
    socket_url = f"{stack.platform.url.replace('http', 'ws', 1)}/ws/dashboard/rooms/{room.name}/"
    viewer = DashboardViewer(call, socket_url, session_cookie(support_staff=True))
    agent = room.start()
    reference = " ".join(SENTENCES[:3])
    say(alice, *SENTENCES[:3])
    finals = wait_for_turn(alice, "alice", SENTENCES[2])
    assert wer(reference, captions_of(alice, "alice")) <= MAX_WER, captions_of(alice, "alice")

    messages = alice.messages.snapshot()
    assert {m.sender for m in messages} == {agent}
    speaking = [m.payload for m in messages if m.type == "speaking"]
    assert speaking
    assert all((s["speakerId"], s["speaker"]) == ("alice", "Alice") for s in speaking)
    assert all((f["speakerId"], f["speaker"], f["transcriptionId"]) == ("alice", "Alice", room.transcription_id)
               for f in finals)  # fmt: skip
    print(f"WER one speaker: {wer(reference, captions_of(alice, 'alice')):.3f}: {captions_of(alice, 'alice')!r}")

    alice.captions.wait_for(
        lambda streams: (
            {c.attributes.get(ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID) for c in streams} >= {f["segmentId"] for f in finals}
        ),
        "every final on lk.transcription too",
    )
    streams = {c.attributes[ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID]: c for c in alice.captions.snapshot()}
    for final in finals:
        caption = streams[final["segmentId"]]
        assert caption.text == final["text"]
        assert caption.attributes[ATTRIBUTE_TRANSCRIPTION_FINAL] == "true"
        assert caption.attributes[ATTRIBUTE_TRANSCRIPTION_TRACK_ID] == alice.track_sid

    viewer.frames.wait_for(
        lambda frames: {s["segmentId"] for s in viewer.segments()} >= {f["segmentId"] for f in finals},
        "the dashboard viewer to receive every final",
    )
    assert {(s["segmentId"], s["text"], s["speakerId"]) for s in viewer.segments()} >= {
        (f["segmentId"], f["text"], "alice") for f in finals
    }
    viewer.close()

    stopped = room.stop()
    assert stopped["status"] == "stopped"
    assert alice.wait_for_agent("participant_disconnected") == agent
    stack.livekit.sfu.wait_event("participant_left", room.name, agent)

    finals = alice.finals()  # everything the agent said before leaving
    rows = stored(room.transcription_id, len(finals))
    assert [(r.segment_key, r.text, r.speaker_id, r.start_ms) for r in rows] == [
        (f["segmentId"], f["text"], "alice", f["startMs"]) for f in finals
    ]
    transcript = room.api.get(room.url("/transcription"), timeout=10).json()
    assert [s["text"] for s in transcript["segments"]] == [f["text"] for f in finals]


def test_two_participants_speaking_in_turns_are_told_apart(stack: Stack, room: Room) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    room.start()
    turns = [(alice, SENTENCES[0]), (bob, SENTENCES[1]), (alice, SENTENCES[3]), (bob, SENTENCES[4])]
    for speaker, sentence in turns:
        say(speaker, sentence)
        for listener in (alice, bob):
            wait_for_turn(listener, speaker.identity, sentence)

    for identity, texts in (("alice", [SENTENCES[0], SENTENCES[3]]), ("bob", [SENTENCES[1], SENTENCES[4]])):
        for listener in (alice, bob):
            heard = captions_of(listener, identity)
            assert wer(" ".join(texts), heard) <= MAX_WER, heard
        print(f"WER {identity}: {wer(' '.join(texts), captions_of(alice if identity == 'bob' else bob, identity)):.3f}")
    finals = {f["segmentId"]: f for f in alice.finals()}
    rows = stored(room.transcription_id, len(finals))
    assert {(r.segment_key, r.speaker_id, r.text) for r in rows} == {
        (key, f["speakerId"], f["text"]) for key, f in finals.items()
    }


def test_a_participant_leaving_mid_utterance_keeps_what_was_said_and_the_agent_goes_on(
    stack: Stack, room: Room
) -> None:
    alice, bob = room.join("alice"), room.join("bob")
    agent = room.start()
    say(bob, SENTENCES[0])
    before = {f["segmentId"] for f in wait_for_turn(alice, "bob", SENTENCES[0])}

    def after_s0(final: dict[str, Any]) -> bool:
        return final["speakerId"] == "bob" and final["segmentId"] not in before

    cut = bob.say(read_wav(speech(SENTENCES[1])))
    cut.halfway.result(60)
    bob.leave()
    stack.livekit.sfu.wait_event("participant_left", room.name, "bob")
    # The agent ends bob's track with what it received: the half sentence is captioned, not dropped.
    alice.messages.wait_for(
        lambda messages: [m for m in messages if m.type == "transcript" and after_s0(m.payload)],
        "the caption of what bob said before leaving",
    )
    say(alice, SENTENCES[3])
    assert wer(SENTENCES[3], " ".join(f["text"] for f in wait_for_turn(alice, "alice", SENTENCES[3]))) <= MAX_WER
    assert ("participant_disconnected", agent, AGENT) not in alice.room_events.snapshot()
    assert "Traceback" not in stack.agent.output()
    cut_short = " ".join(f["text"] for f in alice.finals() if after_s0(f))
    heard, sentence = normalise(cut_short).split(), normalise(SENTENCES[1]).split()
    assert 0 < len(heard) < len(sentence), cut_short
    assert heard[0] == sentence[0], cut_short
    print(f"cut short: {cut_short!r} of {SENTENCES[1]!r}")

    room.stop()
    assert alice.wait_for_agent("participant_disconnected") == agent
    finals = alice.finals()
    rows = stored(room.transcription_id, len(finals))
    assert {(r.segment_key, r.speaker_id, r.text) for r in rows} == {
        (f["segmentId"], f["speakerId"], f["text"]) for f in finals
    }
    assert {"bob", "alice"} == {r.speaker_id for r in rows}


def test_an_agent_killed_mid_call_is_replaced_and_captions_resume_with_nothing_stored_twice(
    stack: Stack, room: Room
) -> None:
    """LiveKit does not give a crashed worker's job to another worker: livekit-server ends it as failed ("agent
    worker left the room", pkg/rtc/room.go) and the dispatch stays. A new dispatch with the platform's metadata
    (what an operator or a supervisor does through the server API) puts a fresh agent process in the room."""
    alice = room.join("alice")
    first_agent = room.start()
    say(alice, SENTENCES[0])
    wait_for_turn(alice, "alice", SENTENCES[0])

    mid_sentence = alice.say(read_wav(speech(SENTENCES[1])))
    mid_sentence.halfway.result(60)
    kill_tree(stack.agent)
    assert alice.wait_for_agent("participant_disconnected") == first_agent
    mid_sentence.spoken.result(60)

    stack.start_agent()
    metadata = json.dumps({"transcriptionId": room.transcription_id, "roomId": room.name})
    stack.wait_for_available_agent()
    redispatch(stack.livekit, room.name, metadata)
    stack.assigned()
    second_agent = room.agent_listening(not_=first_agent)
    assert second_agent != first_agent

    say(alice, SENTENCES[3])
    wait_for_turn(alice, "alice", SENTENCES[3])
    senders = {m.sender for m in alice.messages.snapshot() if m.type == "transcript"}
    assert senders == {first_agent, second_agent}  # the first agent's caption, then the second's

    room.stop()
    finals = alice.finals()
    rows = stored(room.transcription_id, len(finals))
    keys = [r.segment_key for r in rows]
    assert len(keys) == len(set(keys)) == Segment.objects.filter(transcription_id=room.transcription_id).count()
    assert sorted(keys) == sorted({f["segmentId"] for f in finals})
    for earlier, later in itertools.pairwise(rows):
        assert earlier.end_ms <= later.start_ms, (earlier.text, later.text)  # no stretch of speech stored twice
    # The sentence cut by the kill is lost (it was never finished for the first agent, and was over before the
    # second one came): what is stored is exactly the two sentences each agent heard whole.
    kept = " ".join(r.text for r in rows)
    assert wer(f"{SENTENCES[0]} {SENTENCES[3]}", kept) <= MAX_WER, kept
    print(f"WER across the agent restart: {wer(f'{SENTENCES[0]} {SENTENCES[3]}', kept):.3f}: {kept!r}")


def redispatch(livekit: LiveKitServer, room: str, metadata: str) -> None:
    """CreateDispatch through LiveKit's server API, as the platform does, to the registered ``stt-live`` worker."""

    async def create() -> None:
        async with livekit_api.LiveKitAPI(livekit.url, livekit.api_key, livekit.api_secret) as lk:
            await lk.agent_dispatch.create_dispatch(
                livekit_api.CreateAgentDispatchRequest(agent_name="stt-live", room=room, metadata=metadata)
            )

    asyncio.run(create())
