"""Live transcription on the platform side: start/stop/speakers/get, agent dispatch through the LiveKit stand-in,
and the agent's Redis stream → PostgreSQL hand-over (the persister as a real process, restarts included)."""

import json
import signal
import time
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.core.redis import get_redis
from apps.transcription import live
from apps.transcription.models import LiveDeadLetter, Segment, Transcription
from apps.transcription.persister import Persister
from speech.livestore import (
    ACTIVE_ROOMS,
    NAME_MAX_CHARS,
    PERSIST_GROUP,
    SEGMENT_ID_MAX_CHARS,
    SegmentEntry,
    SessionRecord,
    segments_key,
    session_key,
)
from tests.conftest import SignedClient, problem
from tests.support.waiting import wait_until
from tests.support.workers import live_persister

START = "/v1/rooms/standup/transcription/start"
STOP = "/v1/rooms/standup/transcription/stop"
TRANSCRIPT = "/v1/rooms/standup/transcription"
SPEAKERS = "/v1/rooms/standup/transcription/speakers"


def entry(transcription_id: str, n: int, speaker_id: str = "alice", speaker: str = "alice") -> SegmentEntry:
    return SegmentEntry(
        transcription_id=transcription_id,
        segment_id=f"{speaker_id}-{n}",
        speaker_id=speaker_id,
        speaker=speaker,
        start_ms=n * 2000,
        end_ms=n * 2000 + 1500,
        text=f"Sentence number {n}.",
        language="en",
    )


def append(room: str, *entries: SegmentEntry) -> None:
    """What the agent does for each final segment (speech.livestore.AgentStore.append_segment, synchronously)."""
    for item in entries:
        get_redis().xadd(segments_key(room), item.to_fields())


def wait_for_segments(transcription_id: str, count: int, timeout: float = 10) -> list[Segment]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(Segment.objects.filter(transcription_id=transcription_id))
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{len(found)} of {count} segments stored after {timeout} s")


def start(api: SignedClient, livekit, **body) -> dict:
    livekit.add_room("standup")
    response = api.post_json(START, body)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
def test_start_records_state_and_dispatches_the_agent(api: SignedClient, livekit) -> None:
    body = start(
        api, livekit, language="en-US", participants={"alice": "Alice Liddell"}, options={"partialResults": True}
    )
    assert body["roomId"] == "standup"
    assert body["status"] == "active"
    assert body["language"] == "en"
    assert body["transcriptionId"].startswith("tr_")
    assert body["startedAt"].endswith("Z")
    assert body["partialResults"] is True
    transcription = Transcription.objects.get(pk=body["transcriptionId"])
    assert (transcription.kind, transcription.status, transcription.speakers) == (
        "live",
        "active",
        {"alice": "Alice Liddell"},
    )

    record = SessionRecord.from_hash(get_redis().hgetall(session_key("standup")))
    assert record.transcription_id == transcription.id
    assert record.active
    assert record.language == "en"
    assert record.partial_results is True
    assert record.speakers == {"alice": "Alice Liddell"}
    assert abs(record.started_at_ms - transcription.started_at.timestamp() * 1000) < 1
    assert get_redis().sismember(ACTIVE_ROOMS, "standup")
    assert get_redis().xinfo_groups(segments_key("standup"))[0]["name"] == PERSIST_GROUP.encode()

    (call,) = livekit.calls_to("CreateDispatch")
    assert call.request.agent_name == "stt-live"
    assert call.request.room == "standup"
    assert json.loads(call.request.metadata) == {"transcriptionId": transcription.id, "roomId": "standup"}
    assert call.claims.video.room_admin
    assert call.claims.video.room == "standup"
    (dispatch,) = livekit.dispatches["standup"].values()
    assert transcription.dispatch_id == dispatch.id

    again = api.post_json(START, {})
    assert again.status_code == 200
    assert again.json()["transcriptionId"] == transcription.id
    assert len(livekit.calls_to("CreateDispatch")) == 1


@pytest.mark.django_db
def test_start_failures_leave_nothing_behind(api: SignedClient, livekit, settings) -> None:
    absent = api.post_json(START, {})
    assert absent.status_code == 404
    assert "standup" in problem(absent)["detail"]

    livekit.add_room("standup")
    livekit.stop()
    down = api.post_json(START, {})
    assert down.status_code == 503
    assert "LiveKit" in problem(down)["detail"]
    livekit.start()

    livekit.fail_next("CreateDispatch", "internal", "boom")
    failed = api.post_json(START, {})
    assert failed.status_code == 502
    assert not Transcription.objects.exists()
    assert not get_redis().exists(session_key("standup"))

    bad = api.post_json(START, {"language": "klingon", "participants": ["alice"], "options": {"partialResults": 3}})
    assert bad.status_code == 400
    assert set(problem(bad)["errors"]) == {"language", "participants", "options.partialResults"}

    settings.REDIS_URL = ""
    no_redis = api.post_json(START, {})
    assert no_redis.status_code == 503
    assert "REDIS_URL" in problem(no_redis)["detail"]
    assert not Transcription.objects.exists()


@pytest.mark.slow  # a persister process
@pytest.mark.django_db(transaction=True)
def test_segments_reach_postgres_and_the_live_api_while_the_session_runs(
    api: SignedClient, livekit, admin_client
) -> None:
    session = start(api, livekit, participants={"alice": "Alice"})
    tid = session["transcriptionId"]
    with live_persister():
        append("standup", entry(tid, 0), entry(tid, 1, "bob", "Bob"))
        stored = wait_for_segments(tid, 2, timeout=5)
        assert {(s.speaker_id, s.speaker, s.segment_key) for s in stored} == {
            ("alice", "Alice", "alice-0"),  # the session's name wins over the agent's
            ("bob", "Bob", "bob-1"),
        }
        wait_until(lambda: get_redis().xlen(segments_key("standup")) == 0, "the stream stored and emptied", 10)

        body = api.send("GET", TRANSCRIPT).json()
        assert body["status"] == "active"
        assert [(s["speaker"], s["text"], s["startMs"], s["endMs"]) for s in body["segments"]] == [
            ("Alice", "Sentence number 0.", 0, 1500),
            ("Bob", "Sentence number 1.", 2000, 3500),
        ]
        assert body["text"] == "Sentence number 0. Sentence number 1."
        cursor = body["cursor"]

        append("standup", entry(tid, 2))
        wait_for_segments(tid, 3)
        newer = api.send("GET", f"{TRANSCRIPT}?since={cursor}").json()
        assert [s["text"] for s in newer["segments"]] == ["Sentence number 2."]
        assert newer["cursor"] > cursor
        unchanged = api.send("GET", f"{TRANSCRIPT}?since={newer['cursor']}").json()
        assert (unchanged["segments"], unchanged["cursor"]) == ([], newer["cursor"])

        srt = api.send("GET", f"{TRANSCRIPT}?format=srt")
        assert srt["Content-Type"].startswith("application/x-subrip")
        assert "00:00:02,000 --> 00:00:03,500\nBob: Sentence number 1." in srt.content.decode()
        assert api.send("GET", f"{TRANSCRIPT}?format=text").content.decode().startswith("Alice: Sentence number 0.")
        assert api.send("GET", f"{TRANSCRIPT}?format=vtt").content.decode().startswith("WEBVTT")

        page = admin_client.get(reverse("admin:transcription_transcription_change", args=[quote(tid)]))
        assert page.status_code == 200
        assert "Sentence number 2." in page.content.decode()


@pytest.mark.slow  # persister processes
@pytest.mark.django_db(transaction=True)
def test_persister_restart_loses_and_duplicates_nothing(api: SignedClient, livekit) -> None:
    tid = start(api, livekit)["transcriptionId"]
    client = get_redis()
    with live_persister("host-a") as persister:
        append("standup", *(entry(tid, n) for n in range(5)))
        wait_for_segments(tid, 5)
        persister.send_signal(signal.SIGKILL)
        persister.wait(timeout=5)

    # While it is down the agent goes on writing, and the dead process left a batch read but not acknowledged,
    # one of its rows already committed: exactly what a kill between commit and XACK leaves.
    append("standup", *(entry(tid, n) for n in range(5, 10)))
    client.xreadgroup(PERSIST_GROUP, "host-a", {segments_key("standup"): ">"}, count=3)
    live.store_entries([entry(tid, 5)])
    assert Segment.objects.filter(transcription_id=tid).count() == 6

    with live_persister("host-a"):
        stored = wait_for_segments(tid, 10)
    time.sleep(0.3)
    stored = list(Segment.objects.filter(transcription_id=tid))
    assert sorted(s.segment_key for s in stored) == sorted(f"alice-{n}" for n in range(10))
    assert client.xlen(segments_key("standup")) == 0
    assert client.xpending(segments_key("standup"), PERSIST_GROUP)["pending"] == 0


@pytest.mark.django_db
def test_entries_left_pending_by_a_consumer_that_never_returns_are_claimed(api: SignedClient, livekit) -> None:
    tid = start(api, livekit)["transcriptionId"]
    client = get_redis()
    append("standup", *(entry(tid, n) for n in range(4)))
    client.xreadgroup(PERSIST_GROUP, "gone-for-good", {segments_key("standup"): ">"}, count=4)
    survivor = Persister(client, "survivor", block_ms=10, claim_idle_ms=0)
    assert survivor.step() == 4
    assert Segment.objects.filter(transcription_id=tid).count() == 4
    assert client.xpending(segments_key("standup"), PERSIST_GROUP)["pending"] == 0


@pytest.mark.django_db
def test_unreadable_and_foreign_entries_are_dropped_not_stuck(api: SignedClient, livekit) -> None:
    tid = start(api, livekit)["transcriptionId"]
    client = get_redis()
    client.xadd(segments_key("standup"), {"garbage": "1"})
    append("standup", entry("tr_unknown", 1), entry(tid, 2))
    assert Persister(client, "p", block_ms=10).step() == 1
    assert [s.segment_key for s in Segment.objects.all()] == ["alice-2"]
    assert client.xlen(segments_key("standup")) == 0
    assert [json.loads(d.fields) for d in LiveDeadLetter.objects.all()] == [{"garbage": "1"}]


def start_room(api: SignedClient, livekit, room: str) -> str:
    livekit.add_room(room)
    response = api.post_json(f"/v1/rooms/{room}/transcription/start", {})
    assert response.status_code == 201, response.content
    return response.json()["transcriptionId"]


@pytest.mark.django_db
def test_a_bad_entry_is_stored_clipped_or_moved_aside_and_never_holds_up_any_room(
    api: SignedClient, livekit, admin_client, caplog
) -> None:
    """What an agent without validation writes: a 300-character name, NUL in the text, times PostgreSQL refuses."""
    tid, other = start(api, livekit)["transcriptionId"], start_room(api, livekit, "other")
    client = get_redis()
    long_name = SegmentEntry(tid, "alice-0", "x" * 300, "N" * 300, 0, 1500, "Sentence number 0.")
    with_nul = SegmentEntry(tid, "alice-1", "alice\x00", "alice", 2000, 3500, "Null\x00 byte.")
    client.xadd(segments_key("standup"), long_name.to_fields())
    client.xadd(segments_key("standup"), with_nul.to_fields())
    bad_times = client.xadd(segments_key("standup"), {**entry(tid, 2).to_fields(), "endMs": str(2**31)})
    bad_id = client.xadd(
        segments_key("standup"), {**entry(tid, 3).to_fields(), "segmentId": "s" * (SEGMENT_ID_MAX_CHARS + 1)}
    )
    unreadable = client.xadd(
        segments_key("standup"), {**entry(tid, 5).to_fields(), "transcriptionId": "tr\x00", "startMs": "soon"}
    )
    append("standup", entry(tid, 4))
    append("other", entry(other, 0), entry(other, 1))

    assert Persister(client, "p", block_ms=10).step() == 5

    stored = {s.segment_key: s for s in Segment.objects.filter(transcription_id=tid)}
    assert set(stored) == {"alice-0", "alice-1", "alice-4"}
    assert (stored["alice-0"].speaker_id, stored["alice-0"].speaker) == ("x" * NAME_MAX_CHARS, "N" * NAME_MAX_CHARS)
    assert (stored["alice-1"].speaker_id, stored["alice-1"].text) == ("alice", "Null byte.")
    assert Segment.objects.filter(transcription_id=other).count() == 2
    for room in ("standup", "other"):
        assert client.xlen(segments_key(room)) == 0
        assert client.xpending(segments_key(room), PERSIST_GROUP)["pending"] == 0
    letters = {d.entry_id: d for d in LiveDeadLetter.objects.all()}
    assert set(letters) == {bad_times.decode(), bad_id.decode(), unreadable.decode()}
    assert json.loads(letters[unreadable.decode()].fields)["transcriptionId"] == "tr\x00"
    assert {d.room_name for d in letters.values()} == {"standup"}
    assert "2147483648" in letters[bad_times.decode()].fields
    assert "moved to the dead letters" in caplog.text

    page = admin_client.get(reverse("admin:transcription_livedeadletter_changelist"))
    assert page.status_code == 200
    assert bad_times.decode() in page.content.decode()


@pytest.mark.django_db
def test_stop_stores_what_arrived_and_tells_the_agent(api: SignedClient, livekit) -> None:
    tid = start(api, livekit)["transcriptionId"]
    append("standup", entry(tid, 0), entry(tid, 1))  # no persister running: stop itself stores them

    response = api.post_json(STOP, {})
    assert response.status_code == 200
    body = response.json()
    assert (body["transcriptionId"], body["status"], body["segmentCount"]) == (tid, "stopped", 2)
    assert body["stoppedAt"].endswith("Z")
    record = SessionRecord.from_hash(get_redis().hgetall(session_key("standup")))
    assert record.status == "stopped"
    assert 0 < get_redis().ttl(session_key("standup")) <= live.STOPPED_RECORD_TTL_SECONDS
    assert livekit.dispatches["standup"] == {}
    assert len(livekit.calls_to("DeleteDispatch")) == 1

    # The agent finishes its last utterance after stop: it still lands.
    append("standup", entry(tid, 2))
    assert Persister(get_redis(), "p", block_ms=10).step() == 1
    transcript = api.send("GET", TRANSCRIPT).json()
    assert transcript["status"] == "stopped"
    assert transcript["stoppedAt"] == body["stoppedAt"]
    assert len(transcript["segments"]) == 3

    again = api.post_json(STOP, {})
    assert again.status_code == 404
    assert "no active live transcription" in problem(again)["detail"]


@pytest.mark.django_db
def test_stop_works_when_livekit_is_down(api: SignedClient, livekit) -> None:
    start(api, livekit)
    livekit.stop()
    response = api.post_json(STOP, {})
    assert response.status_code == 200
    assert response.json()["status"] == "stopped"


@pytest.mark.django_db
def test_retired_rooms_leave_the_persister(api: SignedClient, livekit) -> None:
    start(api, livekit)
    api.post_json(STOP, {})
    client = get_redis()
    persister = Persister(client, "p", block_ms=10)
    persister.step()
    assert client.sismember(ACTIVE_ROOMS, "standup")  # stopped, but the agent may still be finishing
    an_hour_ago = timezone.now() - timedelta(seconds=live.STOPPED_RECORD_TTL_SECONDS)
    Transcription.objects.update(completed_at=an_hour_ago)
    client.delete(session_key("standup"))  # the stopped record expired
    persister._next_housekeeping = 0
    persister.step()
    assert not client.sismember(ACTIVE_ROOMS, "standup")
    assert not client.exists(segments_key("standup"))


@pytest.mark.django_db
def test_speakers_rename_stored_segments_and_reach_the_agent(api: SignedClient, livekit) -> None:
    tid = start(api, livekit, participants={"alice": "Alice"})["transcriptionId"]
    append("standup", entry(tid, 0), entry(tid, 1, "bob", "bob"))
    Persister(get_redis(), "p", block_ms=10).step()

    response = api.send("PATCH", SPEAKERS, json.dumps({"participants": {"bob": "Bob Marley"}}).encode())
    assert response.status_code == 200, response.content
    assert response.json()["speakers"] == {"alice": "Alice", "bob": "Bob Marley"}
    assert SessionRecord.from_hash(get_redis().hgetall(session_key("standup"))).speakers == {
        "alice": "Alice",
        "bob": "Bob Marley",
    }
    names = [s["speaker"] for s in api.send("GET", TRANSCRIPT).json()["segments"]]
    assert names == ["Alice", "Bob Marley"]

    empty = api.send("PATCH", SPEAKERS, json.dumps({"participants": {}}).encode())
    assert empty.status_code == 400
    assert "participants" in problem(empty)["errors"]


@pytest.mark.django_db
def test_rooms_without_a_live_transcription(api: SignedClient, livekit) -> None:
    for method, path, body in (
        ("GET", TRANSCRIPT, b""),
        ("POST", STOP, b"{}"),
        ("PATCH", SPEAKERS, b'{"participants": {"a": "A"}}'),
    ):
        response = api.send(method, path, body)
        assert response.status_code == 404, (method, path)
        assert "standup" in problem(response)["detail"]
    bad_since = api.send("GET", f"{TRANSCRIPT}?since=-1")
    assert bad_since.status_code == 400


@pytest.mark.django_db
def test_live_endpoints_need_the_transcription_scope(make_key, livekit) -> None:
    rooms_only = SignedClient(make_key("rooms-only", scopes=("rooms",)))
    assert rooms_only.post_json(START, {}).status_code == 403
    assert rooms_only.send("GET", TRANSCRIPT).status_code == 403


@pytest.mark.django_db
def test_admin_stop_action(api: SignedClient, livekit, admin_client) -> None:
    tid = start(api, livekit)["transcriptionId"]
    response = admin_client.post(
        reverse("admin:transcription_transcription_changelist"),
        {"action": "stop_live", "_selected_action": [tid]},
        follow=True,
    )
    assert "Stopped 1 live transcription" in response.content.decode()
    assert Transcription.objects.get(pk=tid).status == "stopped"


REFUSE_POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
BEGIN
    IF NEW.text = 'poison' THEN
        RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'string_data_right_truncation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_poison BEFORE INSERT ON transcription_segment
    FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


@pytest.mark.django_db
def test_a_row_postgresql_refuses_is_moved_aside_and_the_rest_of_its_batch_stored(api: SignedClient, livekit) -> None:
    """Whatever validation does not foresee: PostgreSQL refusing one row must not refuse the batch, nor stop."""
    tid = start(api, livekit)["transcriptionId"]
    with connection.cursor() as cursor:  # DDL in the test's transaction: rolled back with it
        cursor.execute(REFUSE_POISON)
    client = get_redis()
    append("standup", entry(tid, 0))
    poison = client.xadd(segments_key("standup"), {**entry(tid, 1).to_fields(), "text": "poison"})
    append("standup", entry(tid, 2))

    assert Persister(client, "p", block_ms=10).step() == 2
    assert sorted(Segment.objects.values_list("segment_key", flat=True)) == ["alice-0", "alice-2"]
    [letter] = LiveDeadLetter.objects.all()
    assert (letter.entry_id, letter.transcription_id) == (poison.decode(), tid)
    assert "refused by the test" in letter.error
    assert json.loads(letter.fields)["text"] == "poison"

    append("standup", entry(tid, 3))  # no persister: stop stores what arrived, poison included
    client.xadd(segments_key("standup"), {**entry(tid, 4).to_fields(), "text": "poison"})
    response = api.post_json(STOP, {})
    assert response.status_code == 200, response.content
    assert response.json()["segmentCount"] == 3
    assert LiveDeadLetter.objects.count() == 2
    assert client.xlen(segments_key("standup")) == 0


@pytest.mark.django_db
def test_after_redis_lost_its_data_the_persister_restores_every_live_session_from_postgresql(
    api: SignedClient, livekit
) -> None:
    tid = start(api, livekit, participants={"alice": "Alice"})["transcriptionId"]
    ended = start_room(api, livekit, "ended")
    assert api.post_json("/v1/rooms/ended/transcription/stop", {}).status_code == 200
    cut_off = start_room(api, livekit, "cut-off")
    client = get_redis()
    cut_off_record = client.hgetall(session_key("cut-off"))

    client.flushdb()  # Redis restarted without its data
    client.hset(session_key("cut-off"), mapping=cut_off_record)  # and a stop that could not reach Redis:
    Transcription.objects.filter(pk=cut_off).update(status="stopped", completed_at=timezone.now())
    append("standup", entry(tid, 0))  # the agent goes on writing: a stream without the persister's group

    assert Persister(client, "p", block_ms=10).step() == 1
    assert [s.segment_key for s in Segment.objects.filter(transcription_id=tid)] == ["alice-0"]
    assert client.smembers(ACTIVE_ROOMS) == {b"standup", b"ended", b"cut-off"}
    record = SessionRecord.from_hash(client.hgetall(session_key("standup")))
    assert record == live.session_record(Transcription.objects.get(pk=tid))
    assert (record.status, record.speakers) == ("active", {"alice": "Alice"})
    assert client.ttl(session_key("standup")) == -1
    for room, transcription_id in (("ended", ended), ("cut-off", cut_off)):
        stopped = SessionRecord.from_hash(client.hgetall(session_key(room)))
        assert (stopped.transcription_id, stopped.status) == (transcription_id, "stopped")
        assert 0 < client.ttl(session_key(room)) <= live.STOPPED_RECORD_TTL_SECONDS


@pytest.mark.django_db
def test_a_session_started_after_a_stop_in_the_same_room_keeps_its_record(api: SignedClient, livekit) -> None:
    """The stopped record expires; a new session's record written over it must not expire with it."""
    start(api, livekit)
    assert api.post_json(STOP, {}).status_code == 200
    assert get_redis().ttl(session_key("standup")) > 0
    assert api.post_json(START, {}).status_code == 201
    assert get_redis().ttl(session_key("standup")) == -1
