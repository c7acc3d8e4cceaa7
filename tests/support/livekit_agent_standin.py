"""A protocol-level stand-in for livekit-server's agent-worker endpoint, for tests. It is not LiveKit.

No LiveKit server can run where the tests run, so this serves the one thing an agent worker talks to before it
joins a room: the worker WebSocket at ``/agent``, on the wire, as livekit-server does (read from livekit-server's
pkg/service/agentservice.go and pkg/agent/worker.go, not guessed):

* A real aiohttp server on 127.0.0.1 (ephemeral port, background thread). A plain GET is a 404; the upgrade
  request's ``Authorization: Bearer`` JWT is checked with livekit-api's own ``TokenVerifier`` and must carry the
  ``agent`` video grant, else HTTP 401 before upgrading (livekit-server: ``rtc.ErrPermissionDenied``).
* Binary frames are the real protobuf messages: ``livekit.WorkerMessage`` in, ``livekit.ServerMessage`` out.
* ``register`` is answered with ``RegisterWorkerResponse`` (a fresh ``AW_`` worker id, a Standard-edition
  ``ServerInfo``); ``ping`` with ``pong``; ``update_worker`` sets the worker's status and load; ``update_job``
  is recorded per job.
* ``dispatch`` does what the server does when an agent dispatch picks this worker: an ``AvailabilityRequest``
  for a ``JT_ROOM`` job, then, if the worker accepts, a ``JobAssignment`` with a room-join token built as
  ``BuildAgentToken`` builds it (roomJoin + agent grants for that room, the identity the worker chose, kind
  agent, the worker's registered permissions, the ``lk.agent_name`` attribute) and no URL (the worker uses its
  own). A worker that declines, or says nothing within 10 s, gets no assignment.
* Room joins: a job connecting to its room reaches ``/rtc/v1`` (then the legacy ``/rtc`` and ``/rtc/validate``)
  on the same host. Each request is recorded as a ``RoomJoin`` (the token's verified claims, the decoded v1
  ``JoinRequest``) and refused with a 404: the stand-in runs no rooms, no signalling and no media (no WebRTC),
  so a job that gets that far fails to connect, after livekit's own retries (about half a second). That is when it
  runs alone; ``tests.sfu.LiveKitServer`` mounts ``/agent`` (``add_routes``) next to the SFU stand-in's ``/rtc`` on
  one port, and there the job really joins its room.

Everything it received is kept (``received``: worker id and decoded message; ``room_joins``) for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import secrets
import string
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import jwt
from aiohttp import WSMsgType, web
from livekit import api
from livekit.protocol import agent, models, rtc

from tests.support.background import BackgroundAiohttpServer

ASSIGN_JOB_TIMEOUT = 10.0  # livekit-server's AssignJobTimeout
AGENT_NAME_ATTRIBUTE = "lk.agent_name"
_ID_ALPHABET = string.ascii_letters + string.digits

T = TypeVar("T")


def guid(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


@dataclass
class ConnectedWorker:
    """One worker WebSocket: its verified claims and, once it registered, its registration."""

    id: str
    claims: api.access_token.Claims
    ws: web.WebSocketResponse
    registration: agent.RegisterWorkerRequest | None = None
    status: int = agent.WS_AVAILABLE
    load: float = 0.0
    closed: bool = False
    pending: dict[str, asyncio.Future[agent.AvailabilityResponse]] = field(default_factory=dict)


@dataclass
class DispatchedJob:
    job: agent.Job
    worker_id: str
    availability: agent.AvailabilityResponse | None = None
    assignment: agent.JobAssignment | None = None
    updates: list[agent.UpdateJobStatus] = field(default_factory=list)


@dataclass
class RoomJoin:
    """A request to join a room's signal endpoint: verified token claims, decoded v1 ``JoinRequest`` if any."""

    path: str
    query: dict[str, str]
    claims: api.access_token.Claims | None
    join_request: rtc.JoinRequest | None


def _join_request(encoded: str | None) -> rtc.JoinRequest | None:
    """``/rtc/v1?join_request=``: base64url of a ``WrappedJoinRequest``, its payload optionally gzipped."""
    if not encoded:
        return None
    wrapped = rtc.WrappedJoinRequest.FromString(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload = wrapped.join_request
    if wrapped.compression == rtc.WrappedJoinRequest.GZIP:
        payload = gzip.decompress(payload)
    return rtc.JoinRequest.FromString(payload)


class AgentWorkerStandIn(BackgroundAiohttpServer):
    """livekit-server's ``/agent`` endpoint as a livekit-agents worker sees it. Context manager or start/stop."""

    name = "agent-worker stand-in"
    stop_timeout = 10.0

    def __init__(self, api_key: str, api_secret: str, *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.api_key = api_key
        self.api_secret = api_secret
        self.workers: dict[str, ConnectedWorker] = {}
        self.jobs: dict[str, DispatchedJob] = {}
        self.received: list[tuple[str, agent.WorkerMessage]] = []  # (worker id, message)
        self.refused: list[int] = []  # HTTP statuses of refused upgrade requests
        self.room_joins: list[RoomJoin] = []
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """What a worker is given as LIVEKIT_URL (it appends ``/agent``)."""
        return f"ws://{self.host}:{self.port}"

    # ---------------------------------------------------------------- test API (thread-safe)

    def wait_for(self, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
        """Poll ``probe`` until it returns something truthy; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("the agent-worker stand-in never saw what the test waited for")
            time.sleep(0.05)

    def registered(self) -> list[ConnectedWorker]:
        with self._lock:
            return [w for w in self.workers.values() if w.registration is not None and not w.closed]

    def messages(self, kind: str) -> list[Any]:
        """Every received WorkerMessage payload of one kind (``"register"``, ``"update_job"``...), oldest first."""
        with self._lock:
            return [getattr(m, kind) for _, m in self.received if m.WhichOneof("message") == kind]

    def dispatch(
        self, room_name: str, metadata: str = "", *, agent_name: str | None = None, timeout: float = 15.0
    ) -> DispatchedJob:
        """An agent dispatch reaching a registered worker: availability request, then the assignment."""
        return self.dispatch_soon(models.Room(sid=guid("RM_"), name=room_name), metadata, agent_name).result(timeout)

    def dispatch_soon(
        self, room: models.Room, metadata: str = "", agent_name: str | None = None, dispatch_id: str = ""
    ) -> Future[DispatchedJob]:
        """``dispatch`` without waiting, for the room as the server knows it (what CreateDispatch triggers)."""
        return self.soon(self._dispatch(room, metadata, agent_name, dispatch_id or guid("AD_")))

    def add_routes(self, app: web.Application) -> None:
        """Serve ``/agent`` from ``app`` (another stand-in's): how it shares a port with the SFU's ``/rtc``."""
        app.router.add_get("/agent", self._agent)
        app.on_startup.append(self._attach)
        app.on_shutdown.append(lambda _app: self._close_workers())

    async def _attach(self, _app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()

    # ---------------------------------------------------------------- server

    def serve_routes(self, app: web.Application) -> None:
        self.add_routes(app)
        app.router.add_route("*", "/rtc{rest:.*}", self._rtc)

    async def _close_workers(self) -> None:
        for worker in list(self.workers.values()):
            await worker.ws.close()

    async def _rtc(self, request: web.Request) -> web.StreamResponse:
        """A room join (signal WebSocket ``/rtc/v1``, legacy ``/rtc``, ``/rtc/validate``): recorded, then refused."""
        token = request.query.get("access_token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :]
        try:
            claims: api.access_token.Claims | None = self._verifier.verify(token)
        except jwt.PyJWTError:
            claims = None
        join = RoomJoin(request.path, dict(request.query), claims, _join_request(request.query.get("join_request")))
        with self._lock:
            self.room_joins.append(join)
        return web.Response(status=404, text="the agent-worker stand-in serves no rooms")

    def _claims(self, request: web.Request) -> api.access_token.Claims | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        try:
            return self._verifier.verify(header[len("Bearer ") :])
        except jwt.PyJWTError:
            return None

    async def _agent(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=404)
        claims = self._claims(request)
        if claims is None or claims.video is None or not claims.video.agent:
            with self._lock:
                self.refused.append(401)
            return web.Response(status=401, text="permissions denied")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        worker = ConnectedWorker(guid("AW_"), claims, ws)
        with self._lock:
            self.workers[worker.id] = worker
        try:
            async for frame in ws:
                if frame.type != WSMsgType.BINARY:
                    continue
                message = agent.WorkerMessage.FromString(frame.data)
                with self._lock:
                    self.received.append((worker.id, message))
                await self._handle(worker, message)
        finally:
            with self._lock:
                worker.closed = True
        return ws

    async def _handle(self, worker: ConnectedWorker, message: agent.WorkerMessage) -> None:
        kind = message.WhichOneof("message")
        if kind == "register":
            with self._lock:
                worker.registration = message.register
            info = models.ServerInfo(edition=models.ServerInfo.Standard, version="agent-standin", protocol=16)
            info.agent_protocol = 1
            reply = agent.ServerMessage(register=agent.RegisterWorkerResponse(worker_id=worker.id, server_info=info))
            await worker.ws.send_bytes(reply.SerializeToString())
        elif kind == "ping":
            pong = agent.WorkerPong(last_timestamp=message.ping.timestamp, timestamp=int(time.time() * 1000))
            await worker.ws.send_bytes(agent.ServerMessage(pong=pong).SerializeToString())
        elif kind == "update_worker":
            with self._lock:
                if message.update_worker.HasField("status"):
                    worker.status = message.update_worker.status
                worker.load = message.update_worker.load
        elif kind == "availability":
            waiter = worker.pending.pop(message.availability.job_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message.availability)
        elif kind == "update_job":
            with self._lock:
                job = self.jobs.get(message.update_job.job_id)
                if job is not None:
                    job.updates.append(message.update_job)

    async def _dispatch(
        self, room: models.Room, metadata: str, agent_name: str | None, dispatch_id: str
    ) -> DispatchedJob:
        candidates = [
            w
            for w in self.registered()
            if w.status == agent.WS_AVAILABLE
            and (agent_name is None or (w.registration is not None and w.registration.agent_name == agent_name))
        ]
        if not candidates:
            raise AssertionError("no registered, available worker for this dispatch")
        worker = candidates[0]
        assert worker.registration is not None
        job = agent.Job(
            id=guid("AJ_"),
            dispatch_id=dispatch_id,
            type=agent.JT_ROOM,
            room=room,
            metadata=metadata,
            agent_name=worker.registration.agent_name,
        )
        now = time.time_ns()
        job.state.worker_id = worker.id
        job.state.status = agent.JS_RUNNING
        job.state.started_at = job.state.updated_at = now
        dispatched = DispatchedJob(job, worker.id)
        with self._lock:
            self.jobs[job.id] = dispatched
        waiter: asyncio.Future[agent.AvailabilityResponse] = asyncio.get_running_loop().create_future()
        worker.pending[job.id] = waiter
        request = agent.ServerMessage(availability=agent.AvailabilityRequest(job=job))
        await worker.ws.send_bytes(request.SerializeToString())
        try:
            answer = await asyncio.wait_for(waiter, ASSIGN_JOB_TIMEOUT)
        except TimeoutError:
            worker.pending.pop(job.id, None)
            return dispatched
        with self._lock:
            dispatched.availability = answer
        if not answer.available or answer.terminate:
            return dispatched
        assignment = agent.JobAssignment(job=job, token=self._agent_token(job, answer, worker.registration))
        with self._lock:
            dispatched.assignment = assignment
        await worker.ws.send_bytes(agent.ServerMessage(assignment=assignment).SerializeToString())
        return dispatched

    def _agent_token(
        self, job: agent.Job, answer: agent.AvailabilityResponse, registration: agent.RegisterWorkerRequest
    ) -> str:
        """protocol/agent.BuildAgentToken: a one-hour room-join token for the identity the worker chose."""
        permissions = registration.allowed_permissions
        grants = api.VideoGrants(
            room_join=True,
            agent=True,
            room=job.room.name,
            can_subscribe=permissions.can_subscribe,
            can_publish=permissions.can_publish,
            can_publish_data=permissions.can_publish_data,
            hidden=permissions.hidden,
            can_update_own_metadata=permissions.can_update_metadata,
        )
        attributes = dict(answer.participant_attributes)
        attributes[AGENT_NAME_ATTRIBUTE] = registration.agent_name
        return (
            api.AccessToken(self.api_key, self.api_secret)
            .with_grants(grants)
            .with_identity(answer.participant_identity)
            .with_name(answer.participant_name)
            .with_kind("agent")
            .with_ttl(timedelta(hours=1))
            .with_metadata(answer.participant_metadata)
            .with_attributes(attributes)
            .to_jwt()
        )
