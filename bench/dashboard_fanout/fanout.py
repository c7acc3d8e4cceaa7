"""Dashboard fan-out benchmark: agent's Redis write → every viewer's WebSocket, through the real processes.

Plays the live agent (XADD of final segments to the room streams, PUBLISH of speaking events, as
`speech.livestore.AgentStore` does) against `manage.py persistlive` (stream → PostgreSQL → Channels group, and the
speaking relay) and the ASGI app under uvicorn (Channels consumers on the Redis channel layer), with real
WebSocket viewers logged in as a "Support staff" member. For every segment and speaking event it records the
wall-clock time just before the Redis write and the time each viewer receives it.

Set-up is self-contained: a dedicated PostgreSQL database (created and migrated) and a dedicated Redis DB
(only this benchmark's keys are deleted). Run through run.sh; see README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PY = sys.executable

SPEECH = (
    "so the next thing is the release we said we would ship on Thursday but the migration is not done yet and "
    "I think we need one more day to test it with the customer data can you check the logs from last night "
    "there were a few errors in the upload path that look like timeouts on the storage side"
)
WORDS = SPEECH.split(" ")


# --------------------------------------------------------------------------------------------------
# environment, database, Redis, login
# --------------------------------------------------------------------------------------------------


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    """Production-like settings, as tests/support/servers.py's server_environment(), on the benchmark's own stores."""
    env = dict(os.environ)
    for name in ("LIVEKIT_URL", "WHISPER_URL"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="rtcstack_site.settings",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        SECRET_KEY="bench-" + secrets.token_urlsafe(48),
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        LIVEKIT_API_KEY="APIbench",
        LIVEKIT_API_SECRET=secrets.token_urlsafe(32),
        LIVEKIT_PUBLIC_URL="wss://livekit.example",
        LOG_LEVEL=args.log_level,
        PYTHONUNBUFFERED="1",
    )
    if args.settings:  # a prototype: a settings module outside the repo (e.g. one that imports ours and edits it)
        env["DJANGO_SETTINGS_MODULE"] = args.settings
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.pythonpath, env.get("PYTHONPATH")]))
    return env


def admin_connection(url: str) -> tuple[Any, str]:
    """An autocommit connection to the server's `postgres` database, and the benchmark database's name."""
    import psycopg

    parts = urlsplit(url)
    options = {"password": parts.password} if parts.password else {}
    conn = psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        dbname="postgres",
        autocommit=True,
        **options,
    )
    return conn, parts.path.lstrip("/")


def ensure_database(url: str) -> None:
    conn, name = admin_connection(url)
    with conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    conn, name = admin_connection(url)
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    log(f"dropped database {name}")


def clean_redis(client: Any) -> int:
    """Delete only what this benchmark (the app, the channel layer) writes: the DB may hold nothing else of ours."""
    deleted = 0
    for pattern in ("rtcstack:live:*", "asgi*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            deleted += client.delete(*keys[i : i + 500])
    return deleted


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path[:0] = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    import django

    django.setup()


def login_cookie() -> str:
    """A staff user in "Support staff" (the group comes from a data migration) and a logged-in session."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user, created = get_user_model().objects.get_or_create(
        username="fanout-bench", defaults={"is_staff": True, "email": "fanout-bench@example.com"}
    )
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get(name="Support staff"))
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


# --------------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"== {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for proc in reversed(self.tree()):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        proc.kill()
                self.popen.wait(timeout=5)


def start_service(name: str, command: list[str], env: dict[str, str], out: Path) -> Service:
    log_path = out / f"{name}.log"
    handle = log_path.open("ab")
    handle.write(f"\n$ {' '.join(command)}\n".encode())
    handle.flush()
    popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return Service(name, popen, log_path)


def wait_for_log(service: Service, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while needle not in service.log_path.read_text(errors="replace"):
        if service.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} did not start:\n{service.log_path.read_text()[-4000:]}")
        time.sleep(0.1)


async def wait_for_uvicorn(service: Service, port: int, workers: int, cookie: str, timeout: float = 60) -> None:
    """Every worker up (for >1 worker: children alive) and a logged-in socket gets its room list."""
    from websockets.asyncio.client import connect

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if service.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start ({last_error!r}):\n{service.log_path.read_text()[-4000:]}")
        alive = len(service.tree()) - (1 if workers > 1 else 0)
        try:
            if alive >= workers:
                async with connect(
                    f"ws://127.0.0.1:{port}/ws/dashboard/rooms/",
                    additional_headers={"Cookie": cookie},
                    origin=f"http://127.0.0.1:{port}",
                    open_timeout=5,
                ) as ws:
                    first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if first.get("type") == "rooms":
                        break
        except Exception as error:  # noqa: BLE001 - keep polling until the deadline
            last_error = error
        await asyncio.sleep(0.3)
    if workers > 1:
        await asyncio.sleep(2)  # the other workers finish importing Django


def redis_server_process(client: Any) -> psutil.Process | None:
    try:
        return psutil.Process(int(client.info("server")["process_id"]))
    except (psutil.Error, KeyError, ValueError):
        return None


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds per PostgreSQL backend connected to the benchmark's database (other databases' are not ours)."""
    found = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] in ("postgres", "postmaster") and database in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                found[proc.pid] = times.user + times.system
    return found


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0)


def wait_for_quiet(services: list[Service], redis_proc: Any, args: argparse.Namespace) -> float:
    """Wait (up to --quiet-wait s) until processes other than ours use < --quiet-cpu of a core; returns that share."""
    deadline = time.monotonic() + args.quiet_wait
    while True:
        ours, machine = cpu_snapshot(services, redis_proc), machine_busy_seconds()
        time.sleep(3)
        ours_after, machine_after = cpu_snapshot(services, redis_proc), machine_busy_seconds()
        wall = ours_after["wall"] - ours["wall"]
        own = sum(ours_after[k] - ours[k] for k in ours if k != "wall")
        other = max(0.0, machine_after - machine - own) / wall
        if other < args.quiet_cpu or time.monotonic() > deadline:
            if other >= args.quiet_cpu:
                log(f"WARNING: other processes still use {other:.2f} core(s); measuring anyway")
            return other
        log(f"other processes use {other:.2f} core(s); waiting for a quiet machine")


# --------------------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------------------


@dataclass
class Room:
    name: str
    transcription_id: str
    viewers: int
    speakers: dict[str, str]


@dataclass
class Scenario:
    name: str
    rooms: list[Room]
    list_viewers: int


def build_scenario(name: str, args: argparse.Namespace, tag: str) -> list[tuple[str, int]]:
    """(room name, viewers) for a scenario: a = one busy room, b = many rooms, c = both at once."""
    rooms: list[tuple[str, int]] = []
    if name in ("a", "c"):
        rooms.append((f"fanout-{tag}-big", args.viewers))
    if name in ("b", "c"):
        for i in range(args.rooms):
            # 20 rooms, 50 sockets: 2 or 3 viewers per room, alternating (each room's share of `room_viewers`).
            share = math.floor((i + 1) * args.room_viewers / args.rooms) - math.floor(
                i * args.room_viewers / args.rooms
            )
            rooms.append((f"fanout-{tag}-room{i:02d}", max(share, 1)))
    if not rooms:
        raise SystemExit(f"unknown scenario {name!r} (a, b or c)")
    return rooms


def open_rooms(specs: list[tuple[str, int]], speakers_per_room: int) -> list[Room]:
    """What live.start does, without LiveKit: the active row, the agent's session record, the stream and group."""
    from django.utils import timezone

    from apps.core.redis import get_redis
    from apps.transcription import live
    from apps.transcription.models import Transcription
    from speech.livestore import session_key

    client = get_redis()
    rooms = []
    for name, viewers in specs:
        speakers = {f"PA_{name[-6:]}_{k}": f"Speaker {k + 1}" for k in range(speakers_per_room)}
        transcription = Transcription.objects.create(
            kind=Transcription.Kind.LIVE,
            status=Transcription.Status.ACTIVE,
            room_name=name,
            language="en",
            speakers=speakers,
            started_at=timezone.now(),
        )
        client.hset(session_key(name), mapping=live.session_record(transcription).to_hash())
        live.open_stream(client, name)
        rooms.append(Room(name, transcription.id, viewers, speakers))
    return rooms


def close_rooms(rooms: list[Room]) -> None:
    """Stop the sessions and drop their Redis record, so the persister retires the streams (empty by now)."""
    from django.utils import timezone

    from apps.core.redis import get_redis
    from apps.dashboard.events import speaking_key
    from apps.transcription.models import Transcription
    from speech.livestore import session_key

    client = get_redis()
    Transcription.objects.filter(pk__in=[r.transcription_id for r in rooms]).update(
        status=Transcription.Status.STOPPED, completed_at=timezone.now()
    )
    for room in rooms:
        client.delete(session_key(room.name), speaking_key(room.name))


@dataclass
class Sent:
    kind: str  # segment | speaking | speaking_stopped
    room: str
    at: float  # time.time() just before the Redis write
    measured: bool


@dataclass
class Viewer:
    room: str | None  # None: the room list
    connect_s: float = 0.0
    received: list[tuple[str, str, float]] = field(default_factory=list)  # (kind, key, time.time())
    other: Counter = field(default_factory=Counter)
    error: str = ""


def event_key(room: str, event: dict[str, Any]) -> str:
    """Speaking events carry the agent's session ms (startMs / endMs): unique per room and speaker."""
    stamp = event.get("startMs", event.get("endMs"))
    return f"{room}|{event['type']}|{event.get('speakerId')}|{stamp}"


async def run_viewer(viewer: Viewer, url: str, cookie: str, origin: str, ready: asyncio.Event, gate: asyncio.Semaphore):
    from websockets.asyncio.client import connect

    ws = None
    try:
        async with gate:
            started = time.perf_counter()
            ws = await connect(
                url,
                additional_headers={"Cookie": cookie},
                origin=origin,
                open_timeout=60,
                max_size=None,
                ping_interval=None,
            )
            first = json.loads(await asyncio.wait_for(ws.recv(), 60))
            viewer.connect_s = time.perf_counter() - started
        expected = "backlog" if viewer.room is not None else "rooms"
        if first.get("type") != expected:
            raise RuntimeError(f"first message is {first.get('type')!r}, not {expected!r}")
        ready.set()
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if viewer.room is not None and message.get("roomId", viewer.room) != viewer.room:
                viewer.other["foreign-room"] += 1
            elif kind == "segment":
                viewer.received.append(("segment", message["segment"]["segmentId"], now))
            elif kind in ("speaking", "speaking_stopped"):
                viewer.received.append(("event", event_key(message["roomId"], message), now))
            else:
                viewer.other[kind] += 1
    except asyncio.CancelledError:
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        raise
    except Exception as error:  # noqa: BLE001 - reported in the results
        viewer.error = f"{error.__class__.__name__}: {error}"
        ready.set()


async def play_agent(
    client: Any,
    room: Room,
    sent_segments: dict[tuple[str, str], Sent],
    sent_events: dict[str, Sent],
    measure_from: float,
    stop_at: float,
    interval: tuple[float, float],
) -> None:
    """One utterance per interval: speaking → (speech) → speaking_stopped → (STT) → the final segment's XADD."""
    from speech.livestore import SegmentEntry, client_db, events_channel, segments_key

    rng = random.Random(room.name)
    started = time.time()
    await asyncio.sleep(rng.uniform(0, interval[1]))  # rooms out of phase
    speakers = list(room.speakers.items())
    stream, channel = segments_key(room.name), events_channel(room.name, client_db(client))
    while time.time() < stop_at:
        cycle = rng.uniform(*interval)
        begin = time.time()
        speaker_id, speaker = rng.choice(speakers)
        start_ms = round((begin - started) * 1000)
        end_ms = start_ms + round(cycle * 600)
        for kind, stamp, pause in (("speaking", "startMs", 0.6), ("speaking_stopped", "endMs", 0.15)):
            event = {
                "type": kind,
                "speakerId": speaker_id,
                "speaker": speaker,
                stamp: start_ms if kind == "speaking" else end_ms,
            }
            at = time.time()
            sent_events[event_key(room.name, event)] = Sent(kind, room.name, at, at >= measure_from)
            await client.publish(channel, json.dumps(event, ensure_ascii=False))
            await asyncio.sleep(cycle * pause)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))).capitalize() + "."
        entry = SegmentEntry(
            room.transcription_id, f"TR_{speaker_id}-{start_ms}", speaker_id, speaker, start_ms, end_ms, text, "en"
        )
        at = time.time()
        sent_segments[(room.name, entry.segment_id)] = Sent("segment", room.name, at, at >= measure_from)
        await client.xadd(stream, entry.to_fields())
        await asyncio.sleep(max(0.0, begin + cycle - time.time()))


async def tap_groups(rooms: list[Room], seen: dict[Any, float], ready: asyncio.Event) -> None:
    """--tap: one extra raw channel in every room group (in this process) times when group_send lands in Redis.

    XADD → tap is the persister's (or relay's) share plus Redis; tap → viewer is the ASGI workers' fan-out.
    """
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    from apps.dashboard.events import room_group

    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = await layer.new_channel()
    try:
        for room in rooms:
            await layer.group_add(room_group(room.name), channel)
        ready.set()
        while True:
            message = await layer.receive(channel)
            now = time.time()
            for payload in message.get("payloads", []):
                kind = payload.get("type")
                if kind == "segment":
                    seen.setdefault((payload["roomId"], payload["segment"]["segmentId"]), now)
                elif kind in ("speaking", "speaking_stopped"):
                    seen.setdefault(event_key(payload["roomId"], payload), now)
    finally:
        for room in rooms:
            with contextlib.suppress(Exception):
                await layer.group_discard(room_group(room.name), channel)
        await layer.close_pools()


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late the driver's own event loop wakes up (if high, the client side inflates the delays)."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        samples.append(time.perf_counter() - before - 0.01)


async def run_scenario(
    scenario: Scenario, args: argparse.Namespace, port: int, cookie: str, services: list[Service], redis_proc: Any
) -> dict[str, Any]:
    import redis.asyncio as aioredis

    origin = f"http://127.0.0.1:{port}"
    from urllib.parse import quote

    viewers: list[Viewer] = []
    tasks: list[asyncio.Task] = []
    gate = asyncio.Semaphore(args.connect_concurrency)
    readies: list[asyncio.Event] = []
    for room in scenario.rooms:
        for _ in range(room.viewers):
            viewers.append(Viewer(room.name))
    for _ in range(scenario.list_viewers):
        viewers.append(Viewer(None))
    for viewer in viewers:
        path = f"/ws/dashboard/rooms/{quote(viewer.room, safe='')}/" if viewer.room else "/ws/dashboard/rooms/"
        ready = asyncio.Event()
        readies.append(ready)
        tasks.append(
            asyncio.create_task(run_viewer(viewer, f"ws://127.0.0.1:{port}{path}", cookie, origin, ready, gate))
        )
    connect_started = time.perf_counter()
    await asyncio.gather(*(ready.wait() for ready in readies))
    connect_all_s = time.perf_counter() - connect_started
    errors = [v.error for v in viewers if v.error]
    if errors:
        raise RuntimeError(f"{len(errors)} viewer(s) failed to connect: {errors[:3]}")

    tapped: dict[Any, float] = {}
    tap_task = None
    if args.tap:
        tap_ready = asyncio.Event()
        tap_task = asyncio.create_task(tap_groups(scenario.rooms, tapped, tap_ready))
        await asyncio.wait_for(tap_ready.wait(), 10)
    client = aioredis.Redis.from_url(args.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0)
    sent_segments: dict[tuple[str, str], Sent] = {}
    sent_events: dict[str, Sent] = {}
    lag: list[float] = []
    lag_stop = asyncio.Event()
    lag_task = asyncio.create_task(loop_lag(lag, lag_stop))
    now = time.time()
    measure_from, stop_at = now + args.warmup, now + args.warmup + args.duration
    agents = [
        asyncio.create_task(play_agent(client, room, sent_segments, sent_events, measure_from, stop_at, args.interval))
        for room in scenario.rooms
    ]
    await asyncio.sleep(max(0.0, measure_from - time.time()))
    database = urlsplit(args.database_url).path.lstrip("/")
    cpu_before, pg_before = cpu_snapshot(services, redis_proc), postgres_cpu(database)
    cpu_before["machine"] = machine_busy_seconds()
    await asyncio.sleep(max(0.0, stop_at - time.time()))
    cpu_after, pg_after = cpu_snapshot(services, redis_proc), postgres_cpu(database)
    cpu_after["machine"] = machine_busy_seconds()
    # Backends alive at the end (one that exited in between is not counted).
    cpu_before["postgres"] = 0.0
    cpu_after["postgres"] = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    await asyncio.gather(*agents)
    lag_stop.set()
    await lag_task

    # Drain: wait until every viewer has every segment and event (or the drain timeout).
    per_room = defaultdict(int)
    for sent in sent_segments.values():
        per_room[sent.room] += 1
    for sent in sent_events.values():
        per_room[sent.room] += 1
    deadline = time.time() + args.drain
    while time.time() < deadline:
        if all(len(v.received) >= per_room[v.room] for v in viewers if v.room is not None):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # late duplicates, if any
    if tap_task is not None:
        tasks.append(tap_task)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    result = analyse(scenario, viewers, sent_segments, sent_events, cpu_before, cpu_after, lag, connect_all_s, args)
    if args.tap:

        def tap_delays(sent: dict[Any, Sent]) -> dict[str, float]:
            return summary_ms([tapped[k] - item.at for k, item in sent.items() if item.measured and k in tapped])

        result["tap"] = {
            "segment_ms": tap_delays(sent_segments),
            "speaking_ms": tap_delays(sent_events),
            "segments_tapped": sum(1 for k in sent_segments if k in tapped),
        }
    result["_raw"] = raw_records(viewers, sent_segments, sent_events, tapped)
    return result


def raw_records(
    viewers: list[Viewer], sent_segments: dict[Any, Sent], sent_events: dict[str, Sent], tapped: dict[Any, float]
) -> list[dict[str, Any]]:
    """Per segment / event: when it was written, when the tap saw it, and each viewer's delay (for digging)."""
    receipts: dict[Any, list[float]] = defaultdict(list)
    for viewer in viewers:
        for kind, key, at in viewer.received:
            receipts[(viewer.room, key) if kind == "segment" else key].append(at)
    records = []
    for key, item in [*sent_segments.items(), *sent_events.items()]:
        records.append(
            {
                "kind": item.kind,
                "room": item.room,
                "key": key if isinstance(key, str) else key[1],
                "sent": item.at,
                "measured": item.measured,
                "tap_ms": round((tapped[key] - item.at) * 1000, 2) if key in tapped else None,
                "delays_ms": sorted(round((at - item.at) * 1000, 2) for at in receipts.get(key, [])),
            }
        )
    return sorted(records, key=lambda r: r["sent"])


def cpu_snapshot(services: list[Service], redis_proc: Any) -> dict[str, float]:
    snap = {service.name: service.cpu_seconds() for service in services}
    me = psutil.Process()
    snap["driver"] = me.cpu_times().user + me.cpu_times().system
    if redis_proc is not None:
        with contextlib.suppress(psutil.Error):
            snap["redis-server"] = redis_proc.cpu_times().user + redis_proc.cpu_times().system
    snap["wall"] = time.monotonic()
    return snap


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) * 1000, 1),
        "p90": round(percentile(values, 90) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
        "max": round(max(values) * 1000, 1) if values else float("nan"),
    }


def deliveries(viewers: list[Viewer], kind: str, sent: dict[Any, Sent], key_of: Any) -> dict[str, Any]:
    expected = received = duplicates = missing = unknown = 0
    delays: list[float] = []
    last_viewer: dict[Any, float] = {}
    by_room: dict[str, list[Viewer]] = defaultdict(list)
    for viewer in viewers:
        if viewer.room is not None:
            by_room[viewer.room].append(viewer)
    room_sent: dict[str, list[Any]] = defaultdict(list)
    for key, item in sent.items():
        room_sent[item.room].append(key)
    for room, room_viewers in by_room.items():
        for viewer in room_viewers:
            counts = Counter(key_of(room, k) for kd, k, _ in viewer.received if kd == kind)
            times = {}
            for kd, k, t in viewer.received:
                if kd == kind:
                    times.setdefault(key_of(room, k), t)
            expected += len(room_sent[room])
            for key in room_sent[room]:
                n = counts.get(key, 0)
                if n == 0:
                    missing += 1
                    continue
                received += 1
                duplicates += n - 1
                item = sent[key]
                if item.measured:
                    delay = times[key] - item.at
                    delays.append(delay)
                    last_viewer[key] = max(last_viewer.get(key, 0.0), delay)
            unknown += sum(n for k, n in counts.items() if k not in sent)
    return {
        "expected": expected,
        "received": received,
        "missing": missing,
        "duplicates": duplicates,
        "unknown": unknown,
        "delay_ms": summary_ms(delays),
        "last_viewer_ms": summary_ms(list(last_viewer.values())),
    }


def analyse(
    scenario: Scenario,
    viewers: list[Viewer],
    sent_segments: dict[tuple[str, str], Sent],
    sent_events: dict[str, Sent],
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    lag: list[float],
    connect_all_s: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    wall = cpu_after["wall"] - cpu_before["wall"]
    cpu = {
        name: round(cpu_after[name] - cpu_before[name], 2)
        for name in cpu_after
        if name != "wall" and name in cpu_before
    }
    # Everything else on the machine in the window (other jobs, PostgreSQL's background processes, the kernel).
    cpu["other"] = round(cpu.pop("machine") - sum(cpu.values()), 2)
    other = Counter()
    for viewer in viewers:
        other.update({f"{'list' if viewer.room is None else 'room'}:{k}": n for k, n in viewer.other.items()})
    room_viewers = [v for v in viewers if v.room is not None]
    return {
        "scenario": scenario.name,
        "rooms": len(scenario.rooms),
        "room_viewers": len(room_viewers),
        "list_viewers": scenario.list_viewers,
        "sockets": len(viewers),
        "segments_sent": len(sent_segments),
        "segments_measured": sum(s.measured for s in sent_segments.values()),
        "segments_per_s": round(sum(s.measured for s in sent_segments.values()) / args.duration, 2),
        "events_sent": len(sent_events),
        "segment": deliveries(viewers, "segment", sent_segments, lambda room, key: (room, key)),
        "speaking": deliveries(viewers, "event", sent_events, lambda room, key: key),
        "other_messages": dict(sorted(other.items())),
        "connect_backlog_ms": summary_ms([v.connect_s for v in viewers]),
        "connect_all_s": round(connect_all_s, 2),
        "cpu_s": cpu,
        "cpu_wall_s": round(wall, 1),
        "driver_loop_lag_ms": summary_ms(lag),
    }


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def print_result(result: dict[str, Any]) -> None:
    seg, spk = result["segment"], result["speaking"]
    d, s = seg["delay_ms"], spk["delay_ms"]
    print(
        f"   {result['label']}: {result['sockets']} sockets, {result['rooms']} room(s), "
        f"{result['segments_measured']} segments measured ({result['segments_per_s']}/s)\n"
        f"     segments: {seg['received']}/{seg['expected']} delivered, missing {seg['missing']}, "
        f"dup {seg['duplicates']}; delay ms p50 {d['p50']} p90 {d['p90']} p99 {d['p99']} max {d['max']} "
        f"(n={d['n']}); last viewer p99 {seg['last_viewer_ms']['p99']}\n"
        f"     speaking: {spk['received']}/{spk['expected']} delivered, missing {spk['missing']}, "
        f"dup {spk['duplicates']}; delay ms p50 {s['p50']} p90 {s['p90']} p99 {s['p99']} max {s['max']}\n"
        f"     cpu s over {result['cpu_wall_s']} s: {result['cpu_s']}; driver loop lag p99 "
        f"{result['driver_loop_lag_ms']['p99']} ms; connect+backlog p99 {result['connect_backlog_ms']['p99']} ms",
        flush=True,
    )
    if "tap" in result:
        t = result["tap"]
        print(
            f"     tap (XADD/PUBLISH → group_send landed): segments p50 {t['segment_ms']['p50']} p99 "
            f"{t['segment_ms']['p99']} ms ({t['segments_tapped']}/{result['segments_sent']}); speaking p50 "
            f"{t['speaking_ms']['p50']} p99 {t['speaking_ms']['p99']} ms",
            flush=True,
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="a,b,c", help="a: one room, many viewers; b: many rooms; c: both")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to try, comma-separated")
    parser.add_argument("--reps", type=int, default=2, help="runs per scenario and worker count")
    parser.add_argument("--duration", type=float, default=60, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of traffic before measuring")
    parser.add_argument("--drain", type=float, default=15, help="max seconds to wait for stragglers after the run")
    parser.add_argument("--viewers", type=int, default=50, help="viewers of the big room (scenarios a, c)")
    parser.add_argument("--rooms", type=int, default=20, help="rooms (scenarios b, c)")
    parser.add_argument("--room-viewers", type=int, default=50, help="viewers spread over those rooms")
    parser.add_argument("--list-viewers", type=int, default=2, help="room-list sockets (/ws/dashboard/rooms/)")
    parser.add_argument("--speakers", type=int, default=4, help="participants per room")
    parser.add_argument(
        "--interval", default="2,4", help="seconds between a room's segments: uniform min,max (one per utterance)"
    )
    parser.add_argument(
        "--tap", action="store_true", help="also time group_send's arrival in Redis (one extra group member per room)"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=300, help="max seconds to wait for other processes to go quiet before a run"
    )
    parser.add_argument("--quiet-cpu", type=float, default=0.15, help="'quiet': other processes below this many cores")
    parser.add_argument(
        "--max-other", type=float, default=0.25, help="void a run if other processes used more cores meanwhile"
    )
    parser.add_argument("--retries", type=int, default=2, help="re-runs of a voided run (flushed DB, busy machine)")
    parser.add_argument("--connect-concurrency", type=int, default=10, help="viewers connecting at once")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rtcstack_bench_fanout")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--port", type=int, default=0, help="uvicorn port (0: a free one)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the servers (INFO shows channel drops)")
    parser.add_argument("--settings", default="", help="DJANGO_SETTINGS_MODULE instead of rtcstack_site.settings")
    parser.add_argument(
        "--asgi-app", default="rtcstack_site.asgi:application", help="what uvicorn serves (a prototype: a wrapper)"
    )
    parser.add_argument(
        "--persistlive-script", default="manage.py", help="what runs `persistlive` (a prototype: a patching wrapper)"
    )
    parser.add_argument("--pythonpath", default="", help="prepended to PYTHONPATH (where --settings lives)")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument("--drop-db", action="store_true", help="drop the database at the end")
    args = parser.parse_args()
    low, high = (float(x) for x in args.interval.split(","))
    args.interval = (low, high)
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill -TERM: stop the servers on the way out
    out = args.out or HERE / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    env = bench_environment(args)
    ensure_database(args.database_url)
    log(f"migrating {urlsplit(args.database_url).path.lstrip('/')}")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    django_setup(env)
    from apps.core.redis import get_redis

    sync_redis = get_redis()
    log(f"redis {args.redis_url}: deleted {clean_redis(sync_redis)} stale benchmark key(s)")
    cookie = login_cookie()
    redis_proc = redis_server_process(sync_redis)

    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": f"{os.cpu_count()} CPU(s), {platform.platform()}, {platform.processor() or platform.machine()}",
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "git": git_describe(),
        "argv": sys.argv,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    log(f"results → {out}")
    results = []
    services: list[Service] = []
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            port = args.port or free_port()
            uvicorn = start_service(
                f"uvicorn-w{workers}",
                [PY, "-m", "uvicorn", args.asgi_app, "--host", "127.0.0.1", "--port", str(port),
                 "--ws", "websockets", "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
                env,
                out,
            )  # fmt: skip
            persister = start_service(
                f"persistlive-w{workers}",
                [PY, args.persistlive_script, "persistlive", "--name", "fanout-bench"],
                env,
                out,
            )
            services = [uvicorn, persister]
            wait_for_log(persister, "Persisting live segments")
            asyncio.run(wait_for_uvicorn(uvicorn, port, workers, cookie))
            pids = f"pid {uvicorn.popen.pid}; persistlive pid {persister.popen.pid}"
            log(f"uvicorn --workers {workers} on :{port} ({pids})")
            uvicorn.name, persister.name = "uvicorn", "persistlive"
            for rep in range(1, args.reps + 1):
                for name in args.scenarios.split(","):
                    for attempt in range(args.retries + 1):
                        result = one_run(name, workers, rep, args, port, cookie, services, redis_proc, sync_redis, out)
                        if result is not None:
                            results.append(result)
                            break
                        verdict = "retrying" if attempt < args.retries else "giving up"
                        log(f"run invalidated (attempt {attempt + 1}); {verdict}")
            for service in services:
                service.stop()
            services = []
    finally:
        for service in services:
            service.stop()
        if args.drop_db:
            drop_database(args.database_url)
    (out / "summary.md").write_text(summary_table(results))
    print(summary_table(results))
    failed = [r["label"] for r in results if r["segment"]["missing"] or r["segment"]["duplicates"]]
    if failed:
        print(f"WARNING: lost or duplicated segments in {failed}", file=sys.stderr)
        return 2
    return 0


SENTINEL = "rtcstack:live:bench-fanout-sentinel"


def one_run(
    name: str,
    workers: int,
    rep: int,
    args: argparse.Namespace,
    port: int,
    cookie: str,
    services: list[Service],
    redis_proc: Any,
    sync_redis: Any,
    out: Path,
) -> dict[str, Any] | None:
    """One scenario run; None if another process emptied the Redis DB meanwhile (the results would be void)."""
    from speech.livestore import ACTIVE_ROOMS

    tag = f"w{workers}r{rep}{name}-{secrets.token_hex(2)}"
    rooms = open_rooms(build_scenario(name, args, tag), args.speakers)
    scenario = Scenario(name, rooms, args.list_viewers)
    sync_redis.set(SENTINEL, tag)
    time.sleep(1.5)  # the persister's next XREADGROUP includes the new streams
    other_before = wait_for_quiet(services, redis_proc, args)
    try:
        result = asyncio.run(run_scenario(scenario, args, port, cookie, services, redis_proc))
    finally:
        intact = sync_redis.get(SENTINEL) == tag.encode() and all(
            sync_redis.sismember(ACTIVE_ROOMS, room.name) for room in rooms
        )
        close_rooms(rooms)
    label = f"w{workers} {name} run {rep}"
    raw = result.pop("_raw")
    result.update(workers=workers, rep=rep, label=label, other_cores_before=round(other_before, 2))
    other_cores = result["cpu_s"]["other"] / result["cpu_wall_s"]
    void = ""
    if not intact:
        void = "the benchmark's Redis keys vanished during the run (another process flushed the DB?)"
    elif other_cores > args.max_other:
        void = f"other processes used {other_cores:.2f} core(s) during the run (--max-other {args.max_other})"
    if void:
        log(f"WARNING: {label}: {void}")
        print_result({**result, "label": label + " (VOID)"})
        with (out / "voided.jsonl").open("a") as handle:
            handle.write(json.dumps({**result, "void": void}) + "\n")
        return None
    with gzip.open(out / f"raw-w{workers}-{name}-{rep}.json.gz", "wt") as handle:
        json.dump(raw, handle)
    print_result(result)
    with (out / "results.jsonl").open("a") as handle:
        handle.write(json.dumps(result) + "\n")
    return result


def summary_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| run | sockets | rooms | seg/s | segments delivered (missing, dup) | segment delay ms p50 / p90 / p99 / max "
        "| speaking delay ms p50 / p99 / max | CPU s uvicorn / persistlive / redis / postgres / driver | CPU s other |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        seg, spk, cpu = r["segment"], r["speaking"], r["cpu_s"]
        d, s = seg["delay_ms"], spk["delay_ms"]
        lines.append(
            f"| {r['label']} | {r['sockets']} | {r['rooms']} | {r['segments_per_s']} | "
            f"{seg['received']}/{seg['expected']} ({seg['missing']}, {seg['duplicates']}) | "
            f"{d['p50']} / {d['p90']} / {d['p99']} / {d['max']} | {s['p50']} / {s['p99']} / {s['max']} | "
            f"{cpu.get('uvicorn')} / {cpu.get('persistlive')} / {cpu.get('redis-server', '-')} / "
            f"{cpu.get('postgres', '-')} / {cpu.get('driver')} | {cpu.get('other')} |"
        )
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def git_describe() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return f"{head.strip()} + {len(dirty.splitlines())} uncommitted path(s)"
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
