"""A protocol-level LiveKit stand-in for tests. It is not LiveKit and runs no media.

No LiveKit server binary can be installed where the tests run, so this module serves LiveKit's
server API the way livekit-server does, on the wire, and nothing more:

* A real HTTP server on 127.0.0.1 (ephemeral port, background thread) answering Twirp at
  ``POST /twirp/livekit.<Service>/<Method>`` in both Twirp encodings: ``application/protobuf``
  (what livekit-api 1.2.2 sends, always) and ``application/json`` (protobuf JSON; responses use the
  proto field names and emit defaults, like a Go Twirp server).
* Requests are decoded into, and responses encoded from, the real ``livekit.protocol`` messages.
* Every call's bearer JWT is checked with livekit-api's own ``TokenVerifier`` and the grants the
  real server checks: roomCreate (CreateRoom, DeleteRoom), roomList (ListRooms), roomAdmin plus a
  matching ``room`` (participant calls, UpdateRoomMetadata, SendData, agent dispatch), roomRecord
  (egress), ingressAdmin (ingress).
* Simulated state: rooms, participants and tracks, room-composite egresses, RTMP/WHIP ingresses,
  agent dispatches; helpers move that world along (a participant joins, an egress finishes...).
* ``send_webhook`` and friends post LiveKit webhooks signed as livekit-server signs them.
* ``calls`` records what reached the wire (service, method, decoded request, verified claims).

Served methods (others that real LiveKit has answer ``unimplemented``, naming the stand-in):
RoomService CreateRoom, ListRooms, DeleteRoom, ListParticipants, GetParticipant, RemoveParticipant,
MutePublishedTrack, UpdateParticipant, UpdateRoomMetadata, SendData; Egress StartRoomCompositeEgress,
StopEgress, ListEgress; Ingress CreateIngress, ListIngress, DeleteIngress; AgentDispatchService
CreateDispatch, ListDispatch, DeleteDispatch.

LiveKit behaviour assumed (read from livekit-server's pkg/service and livekit/psrpc, not guessed):

* Auth runs before Twirp. A malformed or wrongly signed token, or an unknown API key, gets a plain
  text HTTP 401 (not a Twirp JSON error), so livekit-api raises ``TwirpError`` with ``code ==
  "unknown"`` and ``status == 401``. A missing grant, or no Authorization header at all, gets the
  Twirp error ``unauthenticated`` / "permissions denied" (HTTP 401): livekit-server wraps every
  grant failure in ``twirp.Unauthenticated``; it never sends ``permission_denied`` for grants.
* Not found: DeleteRoom and UpdateRoomMetadata on an unknown room ("requested room does not
  exist"), GetParticipant ("participant does not exist"), RemoveParticipant ("participant not
  found"), StopEgress ("egress does not exist"), ListIngress/DeleteIngress by id ("ingress does not
  exist"), StartRoomCompositeEgress on an unknown room. ListParticipants on an unknown room returns
  an empty list. MutePublishedTrack on an absent participant and ListDispatch / DeleteDispatch on an
  absent room go through an internal RPC nobody listens to: ``unavailable`` "no response from servers"
  (HTTP 503; the real server answers after its RPC selection timeout, the stand-in at once).
  CreateDispatch on an absent room creates it first, as livekit-server does with room.auto_create on.
* CreateRoom on an existing room returns it, updating empty_timeout / max_participants / metadata
  when given. New rooms get empty_timeout 300 and departure_timeout 20 (livekit-server defaults).
  Rooms never close by themselves here: call ``end_room``.
* Remote unmute is refused (``failed_precondition`` "remote unmute not enabled") unless
  ``enable_remote_unmute`` is set, as in livekit-server's default config. Muting an unknown track sid
  succeeds with an empty track, as the server does.
* Egress: StartRoomCompositeEgress answers EGRESS_STARTING; the egress is ACTIVE right after
  (``auto_activate_egress``). StopEgress answers EGRESS_ENDING; ``finish_egress`` completes it with
  file results (``file_results`` and the legacy ``file``). Stopping an egress that is not STARTING or
  ACTIVE is ``failed_precondition`` "egress with status EGRESS_... cannot be stopped". Storage
  credentials are redacted in the EgressInfo returned (the raw request stays in ``calls``).
  Default file names and S3 locations follow LiveKit Egress conventions as far as known (see
  ``_file_name`` and ``_location``); tests that care should pass ``filename`` / ``location``.
* Ingress: RTMP and WHIP only; the url is the configured RTMP/WHIP base URL, the stream key a fresh
  12-character id, the ingress reusable, transcoding on for RTMP and off (bypass) for WHIP. A missing
  participant_identity is ``invalid_argument`` "no participant identity".
* Webhooks: the body is the protobuf JSON of a ``WebhookEvent`` (camelCase names, defaults omitted,
  compact, UTF-8); the ``Authorization`` header is the bare JWT (no "Bearer ") of an access token
  valid 5 minutes whose ``sha256`` claim is the base64 SHA-256 of the body; Content-Type is
  ``application/webhook+json``. Event ids are ``EV_`` ids and created_at is Unix seconds.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar

import jwt
import requests
from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from livekit import api
from livekit.protocol import agent_dispatch, egress, ingress, models, room, webhook

from tests.support.background import Running

TWIRP_PREFIX = "/twirp/"
PROTOBUF = "application/protobuf"
JSON = "application/json"
WEBHOOK_CONTENT_TYPE = "application/webhook+json"
REDACTED = "<redacted>"

# Twirp's error code -> HTTP status table (twitchtv/twirp ServerHTTPStatusFromErrorCode).
TWIRP_HTTP_STATUS: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}

# Every Twirp method the real server has, from the protocol package's own service descriptors.
_METHODS: dict[tuple[str, str], MethodDescriptor] = {
    (service.name, method.name): method
    for module in (room, egress, ingress, agent_dispatch)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
}

_ID_ALPHABET = string.ascii_letters + string.digits
_ACTIVE_EGRESS = (egress.EGRESS_STARTING, egress.EGRESS_ACTIVE)
_FILE_EXTENSIONS = {egress.MP4: ".mp4", egress.OGG: ".ogg", egress.MP3: ".mp3"}


def guid(prefix: str) -> str:
    """A LiveKit-style id: a type prefix (RM_, PA_, TR_, EG_, IN_, AD_, EV_) and 12 random characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def _now_ns() -> int:
    return time.time_ns()


M = TypeVar("M", bound=Message)


def _copy(message: M) -> M:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


class TwirpReplyError(Exception):
    """A Twirp error the stand-in answers with: JSON ``{"code", "msg"[, "meta"]}`` and the matching status."""

    def __init__(self, code: str, msg: str, meta: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = meta or {}

    @property
    def status(self) -> int:
        return TWIRP_HTTP_STATUS.get(self.code, 500)

    def body(self) -> bytes:
        payload: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.meta:
            payload["meta"] = self.meta
        return json.dumps(payload).encode()


class _AuthRejectedError(Exception):
    """livekit-server's auth middleware refusal: HTTP 401 with a plain-text body, before Twirp runs."""


def _denied() -> TwirpReplyError:
    """What livekit-server answers for any missing grant (twirpAuthError wraps ErrPermissionDenied)."""
    return TwirpReplyError("unauthenticated", "permissions denied")


@dataclass
class ReceivedCall:
    """One HTTP request that reached the stand-in, as decoded, so tests can assert what went over the wire."""

    service: str
    method: str
    request: Message | None
    claims: api.access_token.Claims | None
    encoding: str
    authorization: str
    status: int = 0
    error_code: str = ""


@dataclass
class WebhookDelivery:
    """A webhook as posted (event, exact body, Authorization header) and the receiver's answer."""

    url: str
    event: webhook.WebhookEvent
    body: str
    authorization: str
    status: int
    response_body: bytes
    response_headers: dict[str, str] = field(default_factory=dict)


class LiveRooms(Protocol):
    """Rooms with real participants behind the simulated state (the SFU stand-in): server-API calls that act on a
    participant or a room are passed on, without waiting, after the simulated state changed."""

    def remove_participant(self, room: str, identity: str, reason: int) -> object: ...

    def close_room(self, room: str, reason: int) -> object: ...

    def mute_track(self, room: str, identity: str, sid: str, muted: bool) -> object: ...

    def update_participant(
        self,
        room: str,
        identity: str,
        *,
        name: str = "",
        metadata: str = "",
        attributes: Mapping[str, str] | None = None,
        grants: models.ParticipantPermission | None = None,
    ) -> object: ...

    def send_data(self, room: str, packet: models.DataPacket) -> object: ...


_SERVED: dict[tuple[str, str], str] = {}
F = TypeVar("F", bound=Callable[..., Message])


def _serves(service: str, method: str) -> Callable[[F], F]:
    """Register a LiveKitStandIn method as the implementation of ``livekit.<service>/<method>``."""

    def register(implementation: F) -> F:
        _SERVED[(service, method)] = implementation.__name__
        return implementation

    return register


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that can cut its keep-alive connections, so a stopped stand-in is really gone."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: LiveKitStandIn) -> None:
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are part of the tests; no tracebacks on stderr."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.server.standin._handle(self)

    def do_GET(self) -> None:
        self.server.standin._handle(self)

    def do_PUT(self) -> None:
        self.server.standin._handle(self)

    def do_DELETE(self) -> None:
        self.server.standin._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the call log is ``LiveKitStandIn.calls``."""

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class LiveKitStandIn(Running):
    """A LiveKit server as livekit-api sees it over HTTP: Twirp + JWT grants + simulated state + webhooks.

    Use it as a context manager (``with LiveKitStandIn(key, secret) as lk: ...``) or ``start()`` /
    ``stop()``. ``stop()`` closes the port and every open connection (LiveKit unreachable);
    ``start()`` again serves on the same port. ``delay_seconds`` delays every answer (LiveKit slow);
    note that livekit-api 1.2.2 ignores the aiohttp session's ClientTimeout (it passes ``timeout=None``
    per request), so only an asyncio timeout around the call bounds a slow server.
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rtmp_base_url: str = "rtmp://127.0.0.1:1935/x",
        whip_base_url: str = "http://127.0.0.1:8080/w",
        webhook_url: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.host = host
        self.port = port
        self.rtmp_base_url = rtmp_base_url
        self.whip_base_url = whip_base_url
        self.webhook_url = webhook_url
        self.delay_seconds = 0.0
        self.enable_remote_unmute = False
        self.auto_activate_egress = True
        self.live: LiveRooms | None = None
        # CreateDispatch's hand-over to agent workers (the agent-worker stand-in), after the dispatch is recorded.
        self.dispatcher: Callable[[agent_dispatch.AgentDispatch, models.Room], object] | None = None
        self.calls: list[ReceivedCall] = []
        self.webhooks_sent: list[WebhookDelivery] = []
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._queued_failures: list[tuple[str | None, TwirpReplyError]] = []
        self.reset()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LiveKitStandIn:
        """Serve in a background thread; after a ``stop()`` this binds the same port again."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="livekit-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and cut keep-alive connections: clients now get connection errors."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """The server-API URL to give livekit-api (``LIVEKIT_URL``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The same server as clients would be told (livekit-api turns ws:// into http://)."""
        return f"ws://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every room, participant, egress, ingress, dispatch, call and queued failure."""
        with self._lock:
            self.rooms: dict[str, models.Room] = {}
            self.participants: dict[str, dict[str, models.ParticipantInfo]] = {}
            self.egresses: dict[str, egress.EgressInfo] = {}
            self.egress_requests: dict[str, egress.RoomCompositeEgressRequest] = {}
            self.ingresses: dict[str, ingress.IngressInfo] = {}
            self.dispatches: dict[str, dict[str, agent_dispatch.AgentDispatch]] = {}
            self.ended_rooms: dict[str, models.Room] = {}
            self.room_end_reasons: dict[str, int] = {}
            self.departed: dict[tuple[str, str], models.ParticipantInfo] = {}
            self.calls.clear()
            self.webhooks_sent.clear()
            self._queued_failures.clear()

    # ---------------------------------------------------------------- call log and fault injection

    def calls_to(self, method: str, service: str | None = None) -> list[ReceivedCall]:
        """The recorded calls of one Twirp method (e.g. ``"CreateRoom"``), oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method and (service is None or c.service == service)]

    def fail_next(self, method: str | None, code: str, msg: str = "injected by the LiveKit stand-in") -> None:
        """Answer the next call of ``method`` (any method if None) with this Twirp error, after auth passes."""
        with self._lock:
            self._queued_failures.append((method, TwirpReplyError(code, msg)))

    # ---------------------------------------------------------------- HTTP / Twirp plumbing

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        authorization = handler.headers.get("Authorization", "")
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        service, method, descriptor = self._route(handler.path)
        call = ReceivedCall(service, method, None, None, content_type, authorization)
        with self._lock:
            self.calls.append(call)
        try:
            call.claims = self._authenticate(authorization)
        except _AuthRejectedError as refused:
            call.status = 401
            handler.reply(401, str(refused).encode(), "text/plain; charset=utf-8")
            return
        if not handler.path.startswith(TWIRP_PREFIX):
            # livekit-server's mux: "/" is its liveness answer, anything else unknown is Go's NotFound.
            call.status = 200 if handler.path == "/" else 404
            handler.reply(
                call.status, b"OK" if call.status == 200 else b"404 page not found\n", "text/plain; charset=utf-8"
            )
            return
        try:
            if handler.command != "POST":
                raise TwirpReplyError(
                    "bad_route",
                    f'unsupported method "{handler.command}" (only POST is allowed)',
                    {"twirp_invalid_route": f"{handler.command} {handler.path}"},
                )
            if descriptor is None:
                raise TwirpReplyError(
                    "bad_route",
                    f'no handler for path "{handler.path}"',
                    {"twirp_invalid_route": f"POST {handler.path}"},
                )
            if content_type not in (PROTOBUF, JSON):
                raise TwirpReplyError(
                    "bad_route",
                    f'unexpected Content-Type: "{handler.headers.get("Content-Type", "")}"',
                    {"twirp_invalid_route": f"POST {handler.path}"},
                )
            request = self._decode(descriptor, body, content_type)
            call.request = request
            response = self._dispatch(service, method, request, call.claims)
        except TwirpReplyError as failure:
            call.status, call.error_code = failure.status, failure.code
            handler.reply(failure.status, failure.body(), JSON)
            return
        call.status = 200
        if content_type == JSON:
            payload = json_format.MessageToJson(
                response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=None
            ).encode()
        else:
            payload = response.SerializeToString()
        handler.reply(200, payload, content_type)

    @staticmethod
    def _route(path: str) -> tuple[str, str, MethodDescriptor | None]:
        if not path.startswith(TWIRP_PREFIX):
            return "", "", None
        qualified, _, method = path[len(TWIRP_PREFIX) :].partition("/")
        package, _, service = qualified.rpartition(".")
        if package != "livekit":
            return service, method, None
        return service, method, _METHODS.get((service, method))

    def _authenticate(self, authorization: str) -> api.access_token.Claims | None:
        """livekit-server's APIKeyAuthMiddleware: no header passes without grants; a bad one is a plain 401."""
        if not authorization:
            return None
        if not authorization.startswith("Bearer "):
            raise _AuthRejectedError("invalid authorization header. Must start with Bearer ")
        token = authorization[len("Bearer ") :]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _AuthRejectedError("invalid authorization token") from exc
        if unverified.get("iss") != self.api_key:
            raise _AuthRejectedError(f"invalid API key: {unverified.get('iss', '')}")
        try:
            return self._verifier.verify(token)
        except jwt.PyJWTError as exc:
            raise _AuthRejectedError(f"invalid token, error: {exc}") from exc

    @staticmethod
    def _decode(descriptor: MethodDescriptor, body: bytes, content_type: str) -> Message:
        request_class = GetMessageClass(descriptor.input_type)
        if content_type == JSON:
            try:
                return json_format.Parse(body or b"{}", request_class(), ignore_unknown_fields=True)
            except json_format.ParseError as exc:
                raise TwirpReplyError("malformed", f"the json request could not be decoded: {exc}") from exc
        try:
            return request_class.FromString(body)
        except DecodeError as exc:
            raise TwirpReplyError("malformed", f"failed to parse request proto: {exc}") from exc

    def _dispatch(self, service: str, method: str, request: Message, claims: api.access_token.Claims | None) -> Message:
        with self._lock:
            for index, (target, failure) in enumerate(self._queued_failures):
                if target is None or target == method:
                    del self._queued_failures[index]
                    raise failure
            name = _SERVED.get((service, method))
            if name is None:
                raise TwirpReplyError(
                    "unimplemented", f"livekit.{service}/{method} is not simulated by the LiveKit stand-in"
                )
            return getattr(self, name)(request, _video(claims))

    # ---------------------------------------------------------------- RoomService

    @_serves("RoomService", "CreateRoom")
    def _create_room(self, req: room.CreateRoomRequest, video: api.VideoGrants) -> models.Room:
        if not video.room_create:
            raise _denied()
        if not req.name:
            raise TwirpReplyError("invalid_argument", "no room name")
        existing = self.rooms.get(req.name)
        if existing is None:
            return _copy(
                self.add_room(req.name, req.empty_timeout, req.max_participants, req.metadata, req.departure_timeout)
            )
        if req.empty_timeout:
            existing.empty_timeout = req.empty_timeout
        if req.departure_timeout:
            existing.departure_timeout = req.departure_timeout
        if req.max_participants:
            existing.max_participants = req.max_participants
        if req.metadata:
            existing.metadata = req.metadata
        return _copy(existing)

    @_serves("RoomService", "ListRooms")
    def _list_rooms(self, req: room.ListRoomsRequest, video: api.VideoGrants) -> room.ListRoomsResponse:
        if not video.room_list:
            raise _denied()
        names = set(req.names)
        return room.ListRoomsResponse(rooms=[r for r in self.rooms.values() if not names or r.name in names])

    @_serves("RoomService", "DeleteRoom")
    def _delete_room(self, req: room.DeleteRoomRequest, video: api.VideoGrants) -> room.DeleteRoomResponse:
        if not video.room_create:
            raise _denied()
        self._require_room(req.room)
        self._close_room(req.room, models.DisconnectReason.ROOM_DELETED, models.ROOM_END_API_DELETE)
        if self.live is not None:
            self.live.close_room(req.room, models.DisconnectReason.ROOM_DELETED)
        return room.DeleteRoomResponse()

    @_serves("RoomService", "ListParticipants")
    def _list_participants(
        self, req: room.ListParticipantsRequest, video: api.VideoGrants
    ) -> room.ListParticipantsResponse:
        _require_admin(video, req.room)
        return room.ListParticipantsResponse(participants=list(self.participants.get(req.room, {}).values()))

    @_serves("RoomService", "GetParticipant")
    def _get_participant(self, req: room.RoomParticipantIdentity, video: api.VideoGrants) -> models.ParticipantInfo:
        _require_admin(video, req.room)
        found = self.participants.get(req.room, {}).get(req.identity)
        if found is None:
            raise TwirpReplyError("not_found", "participant does not exist")
        return _copy(found)

    @_serves("RoomService", "RemoveParticipant")
    def _remove_participant(
        self, req: room.RoomParticipantIdentity, video: api.VideoGrants
    ) -> room.RemoveParticipantResponse:
        _require_admin(video, req.room)
        if req.identity not in self.participants.get(req.room, {}):
            raise TwirpReplyError("not_found", "participant not found")
        self._depart(req.room, req.identity, models.DisconnectReason.PARTICIPANT_REMOVED)
        if self.live is not None:
            self.live.remove_participant(req.room, req.identity, models.DisconnectReason.PARTICIPANT_REMOVED)
        return room.RemoveParticipantResponse()

    @_serves("RoomService", "MutePublishedTrack")
    def _mute_published_track(
        self, req: room.MuteRoomTrackRequest, video: api.VideoGrants
    ) -> room.MuteRoomTrackResponse:
        _require_admin(video, req.room)
        participant = self._rpc_target_participant(req.room, req.identity)
        if not req.muted and not self.enable_remote_unmute:
            raise TwirpReplyError("failed_precondition", "remote unmute not enabled")
        if self.live is not None:
            self.live.mute_track(req.room, req.identity, req.track_sid, req.muted)
        for track in participant.tracks:
            if track.sid == req.track_sid:
                track.muted = req.muted
                return room.MuteRoomTrackResponse(track=track)
        return room.MuteRoomTrackResponse()

    @_serves("RoomService", "UpdateParticipant")
    def _update_participant(self, req: room.UpdateParticipantRequest, video: api.VideoGrants) -> models.ParticipantInfo:
        _require_admin(video, req.room)
        participant = self.participants.get(req.room, {}).get(req.identity)
        if participant is None:
            raise TwirpReplyError("not_found", "participant does not exist")
        if req.name:
            participant.name = req.name
        if req.metadata:
            participant.metadata = req.metadata
        for key, value in req.attributes.items():
            if value:
                participant.attributes[key] = value
            else:
                participant.attributes.pop(key, None)
        if req.HasField("permission"):
            participant.permission.CopyFrom(req.permission)
        participant.version += 1
        if self.live is not None:
            grants = req.permission if req.HasField("permission") else None
            self.live.update_participant(
                req.room, req.identity, name=req.name, metadata=req.metadata, attributes=req.attributes, grants=grants
            )
        return _copy(participant)

    @_serves("RoomService", "UpdateRoomMetadata")
    def _update_room_metadata(self, req: room.UpdateRoomMetadataRequest, video: api.VideoGrants) -> models.Room:
        _require_admin(video, req.room)
        found = self._require_room(req.room)
        found.metadata = req.metadata
        return _copy(found)

    @_serves("RoomService", "SendData")
    def _send_data(self, req: room.SendDataRequest, video: api.VideoGrants) -> room.SendDataResponse:
        _require_admin(video, req.room)
        if req.nonce and len(req.nonce) != 16:
            raise TwirpReplyError(
                "invalid_argument", f"nonce should be 16-bytes or not present, got: {len(req.nonce)} bytes"
            )
        self._rpc_target_room(req.room)
        if self.live is not None:
            packet = models.DataPacket(
                kind=req.kind,
                destination_identities=req.destination_identities,
                user=models.UserPacket(
                    payload=req.data,
                    topic=req.topic if req.HasField("topic") else None,
                    destination_identities=req.destination_identities,
                    nonce=req.nonce,
                ),
            )
            self.live.send_data(req.room, packet)
        return room.SendDataResponse()

    # ---------------------------------------------------------------- Egress

    @_serves("Egress", "StartRoomCompositeEgress")
    def _start_room_composite_egress(
        self, req: egress.RoomCompositeEgressRequest, video: api.VideoGrants
    ) -> egress.EgressInfo:
        if not video.room_record:
            raise _denied()
        target = self._require_room(req.room_name)
        if not (req.HasField("file") or req.HasField("stream") or req.HasField("segments")) and not (
            req.file_outputs or req.stream_outputs or req.segment_outputs or req.image_outputs
        ):
            raise TwirpReplyError("invalid_argument", "no outputs")
        info = egress.EgressInfo(
            egress_id=guid("EG_"),
            room_id=target.sid,
            room_name=req.room_name,
            source_type=egress.EGRESS_SOURCE_TYPE_WEB,
            status=egress.EGRESS_STARTING,
            updated_at=_now_ns(),
        )
        info.room_composite.CopyFrom(_redacted(req))
        answer = _copy(info)
        if self.auto_activate_egress:
            info.status = egress.EGRESS_ACTIVE
            info.started_at = info.updated_at = _now_ns()
        self.egresses[info.egress_id] = info
        self.egress_requests[info.egress_id] = _copy(req)
        self._refresh_room(req.room_name)
        return answer

    @_serves("Egress", "StopEgress")
    def _stop_egress(self, req: egress.StopEgressRequest, video: api.VideoGrants) -> egress.EgressInfo:
        if not video.room_record:
            raise _denied()
        info = self._require_egress(req.egress_id)
        if info.status not in _ACTIVE_EGRESS:
            status = egress.EgressStatus.Name(info.status)
            raise TwirpReplyError("failed_precondition", f"egress with status {status} cannot be stopped")
        info.status = egress.EGRESS_ENDING
        info.updated_at = _now_ns()
        self._refresh_room(info.room_name)
        return _copy(info)

    @_serves("Egress", "ListEgress")
    def _list_egress(self, req: egress.ListEgressRequest, video: api.VideoGrants) -> egress.ListEgressResponse:
        if not video.room_record:
            raise _denied()
        items = [
            info
            for info in self.egresses.values()
            if (not req.room_name or info.room_name == req.room_name)
            and (not req.egress_id or info.egress_id == req.egress_id)
            and (not req.active or info.status < egress.EGRESS_COMPLETE)
        ]
        return egress.ListEgressResponse(items=items)

    # ---------------------------------------------------------------- Ingress

    @_serves("Ingress", "CreateIngress")
    def _create_ingress(self, req: ingress.CreateIngressRequest, video: api.VideoGrants) -> ingress.IngressInfo:
        if not video.ingress_admin:
            raise _denied()
        if req.input_type == ingress.URL_INPUT:
            raise TwirpReplyError("unimplemented", "URL_INPUT (pull) ingress is not simulated by the LiveKit stand-in")
        base_url = {ingress.RTMP_INPUT: self.rtmp_base_url, ingress.WHIP_INPUT: self.whip_base_url}.get(req.input_type)
        if base_url is None:
            raise TwirpReplyError("invalid_argument", "unsupported input type")
        if not req.participant_identity:
            raise TwirpReplyError("invalid_argument", "no participant identity")
        info = ingress.IngressInfo(
            ingress_id=guid("IN_"),
            name=req.name,
            stream_key=guid(""),
            url=base_url,
            input_type=req.input_type,
            room_name=req.room_name,
            participant_identity=req.participant_identity,
            participant_name=req.participant_name,
            participant_metadata=req.participant_metadata,
            reusable=True,
            state=ingress.IngressState(status=ingress.IngressState.ENDPOINT_INACTIVE),
        )
        if req.HasField("audio"):
            info.audio.CopyFrom(req.audio)
        if req.HasField("video"):
            info.video.CopyFrom(req.video)
        if req.HasField("enabled"):
            info.enabled = req.enabled
        if req.HasField("enable_transcoding"):
            info.enable_transcoding = req.enable_transcoding
        else:
            info.enable_transcoding = req.input_type != ingress.WHIP_INPUT
        info.bypass_transcoding = not info.enable_transcoding
        self.ingresses[info.ingress_id] = info
        return _copy(info)

    @_serves("Ingress", "ListIngress")
    def _list_ingress(self, req: ingress.ListIngressRequest, video: api.VideoGrants) -> ingress.ListIngressResponse:
        if not video.ingress_admin:
            raise _denied()
        if req.ingress_id:
            return ingress.ListIngressResponse(items=[self._require_ingress(req.ingress_id)])
        items = [i for i in self.ingresses.values() if not req.room_name or i.room_name == req.room_name]
        return ingress.ListIngressResponse(items=items)

    @_serves("Ingress", "DeleteIngress")
    def _delete_ingress(self, req: ingress.DeleteIngressRequest, video: api.VideoGrants) -> ingress.IngressInfo:
        if not video.ingress_admin:
            raise _denied()
        info = self._require_ingress(req.ingress_id)
        del self.ingresses[req.ingress_id]
        info.state.status = ingress.IngressState.ENDPOINT_INACTIVE
        return info

    # ---------------------------------------------------------------- AgentDispatchService

    @_serves("AgentDispatchService", "CreateDispatch")
    def _create_dispatch(
        self, req: agent_dispatch.CreateAgentDispatchRequest, video: api.VideoGrants
    ) -> agent_dispatch.AgentDispatch:
        _require_admin(video, req.room)
        # livekit-server creates the room first (room.auto_create, on by default): the agent may come before anyone.
        target = self.rooms.get(req.room) or self.add_room(req.room)
        dispatch = agent_dispatch.AgentDispatch(
            id=guid("AD_"),
            agent_name=req.agent_name,
            room=req.room,
            metadata=req.metadata,
            restart_policy=req.restart_policy,
            deployment=req.deployment,
            attributes=dict(req.attributes),
            state=agent_dispatch.AgentDispatchState(created_at=_now_ns()),
        )
        self.dispatches.setdefault(req.room, {})[dispatch.id] = dispatch
        if self.dispatcher is not None:
            self.dispatcher(_copy(dispatch), _copy(target))
        return _copy(dispatch)

    @_serves("AgentDispatchService", "ListDispatch")
    def _list_dispatch(
        self, req: agent_dispatch.ListAgentDispatchRequest, video: api.VideoGrants
    ) -> agent_dispatch.ListAgentDispatchResponse:
        _require_admin(video, req.room)
        self._rpc_target_room(req.room)
        found = [
            d for d in self.dispatches.get(req.room, {}).values() if not req.dispatch_id or d.id == req.dispatch_id
        ]
        return agent_dispatch.ListAgentDispatchResponse(agent_dispatches=found)

    @_serves("AgentDispatchService", "DeleteDispatch")
    def _delete_dispatch(
        self, req: agent_dispatch.DeleteAgentDispatchRequest, video: api.VideoGrants
    ) -> agent_dispatch.AgentDispatch:
        _require_admin(video, req.room)
        self._rpc_target_room(req.room)
        dispatch = self.dispatches.get(req.room, {}).pop(req.dispatch_id, None)
        if dispatch is None:
            raise TwirpReplyError("not_found", "dispatch not found")
        dispatch.state.deleted_at = _now_ns()
        return dispatch

    # ---------------------------------------------------------------- state lookups

    def _require_room(self, name: str) -> models.Room:
        found = self.rooms.get(name)
        if found is None:
            raise TwirpReplyError("not_found", "requested room does not exist")
        return found

    def _rpc_target_room(self, name: str) -> models.Room:
        """Calls livekit-server forwards to the node hosting the room: nobody answers for an absent room."""
        found = self.rooms.get(name)
        if found is None:
            raise TwirpReplyError("unavailable", "no response from servers")
        return found

    def _rpc_target_participant(self, room_name: str, identity: str) -> models.ParticipantInfo:
        found = self.participants.get(room_name, {}).get(identity)
        if found is None:
            raise TwirpReplyError("unavailable", "no response from servers")
        return found

    def _require_egress(self, egress_id: str) -> egress.EgressInfo:
        found = self.egresses.get(egress_id)
        if found is None:
            raise TwirpReplyError("not_found", "egress does not exist")
        return found

    def _require_ingress(self, ingress_id: str) -> ingress.IngressInfo:
        found = self.ingresses.get(ingress_id)
        if found is None:
            raise TwirpReplyError("not_found", "ingress does not exist")
        return found

    def _refresh_room(self, name: str) -> None:
        found = self.rooms.get(name)
        if found is None:
            return
        members = self.participants.get(name, {}).values()
        found.num_participants = len(members)
        found.num_publishers = sum(1 for p in members if p.tracks)
        found.active_recording = any(
            e.room_name == name and e.status in (*_ACTIVE_EGRESS, egress.EGRESS_ENDING) for e in self.egresses.values()
        )

    def _depart(self, room_name: str, identity: str, reason: int) -> models.ParticipantInfo:
        participant = self.participants[room_name].pop(identity)
        participant.state = models.ParticipantInfo.DISCONNECTED
        participant.disconnect_reason = reason
        self.departed[(room_name, identity)] = participant
        self._refresh_room(room_name)
        return _copy(participant)

    def _close_room(self, name: str, reason: int, end_reason: int) -> models.Room:
        for identity in list(self.participants.get(name, {})):
            self._depart(name, identity, reason)
        for info in self.egresses.values():
            if info.room_name == name and info.status in _ACTIVE_EGRESS:
                info.status = egress.EGRESS_ENDING  # the recorder sees the room close and finalises
                info.updated_at = _now_ns()
        self.participants.pop(name, None)
        self.dispatches.pop(name, None)
        closed = self.rooms.pop(name)
        closed.num_participants = closed.num_publishers = 0
        closed.active_recording = False
        self.ended_rooms[name] = closed
        self.room_end_reasons[name] = end_reason
        return _copy(closed)

    # ---------------------------------------------------------------- helpers that drive the simulated world

    def add_room(
        self,
        name: str,
        empty_timeout: int = 0,
        max_participants: int = 0,
        metadata: str = "",
        departure_timeout: int = 0,
    ) -> models.Room:
        """A room as CreateRoom (or the first join) makes it, with livekit-server's default timeouts."""
        with self._lock:
            if name in self.rooms:
                return _copy(self.rooms[name])
            now = time.time()
            created = models.Room(
                sid=guid("RM_"),
                name=name,
                empty_timeout=empty_timeout or 300,
                departure_timeout=departure_timeout or 20,
                max_participants=max_participants,
                creation_time=int(now),
                creation_time_ms=int(now * 1000),
                turn_password=secrets.token_urlsafe(24),
                metadata=metadata,
            )
            self.rooms[name] = created
            self.participants[name] = {}
            return _copy(created)

    def add_participant(
        self,
        room_name: str,
        identity: str,
        *,
        name: str = "",
        tracks: Iterable[str | models.TrackInfo] = (),
        metadata: str = "",
        kind: int = models.ParticipantInfo.STANDARD,
    ) -> models.ParticipantInfo:
        """A participant joins (the room is auto-created, as LiveKit does). ``tracks``: "audio", "video",
        "screen" or TrackInfo messages; each gets a TR_ sid. A rejoin with the same identity replaces the old one.
        """
        with self._lock:
            self.add_room(room_name)
            target = self.rooms[room_name]
            members = self.participants[room_name]
            if target.max_participants and identity not in members and len(members) >= target.max_participants:
                raise RuntimeError(f"room {room_name!r} is full ({target.max_participants} participants)")
            now = time.time()
            participant = models.ParticipantInfo(
                sid=guid("PA_"),
                identity=identity,
                name=name,
                metadata=metadata,
                state=models.ParticipantInfo.ACTIVE,
                joined_at=int(now),
                joined_at_ms=int(now * 1000),
                kind=kind,
                version=1,
                permission=models.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True),
            )
            participant.tracks.extend(_track(spec) for spec in tracks)
            participant.is_publisher = bool(participant.tracks)
            members[identity] = participant
            self._refresh_room(room_name)
            return _copy(participant)

    def adopt_room(self, info: models.Room) -> None:
        """A room the SFU opened (its first participant joined): listed as it is, unless already known."""
        with self._lock:
            if info.name not in self.rooms:
                adopted = _copy(info)
                adopted.empty_timeout = adopted.empty_timeout or 300
                adopted.departure_timeout = adopted.departure_timeout or 20
                self.rooms[info.name] = adopted
                self.participants[info.name] = {}

    def put_participant(self, room_name: str, info: models.ParticipantInfo) -> None:
        """A participant of a live room as the SFU sees it now (joined, published, updated)."""
        with self._lock:
            if room_name in self.rooms:
                self.participants[room_name][info.identity] = _copy(info)
                self._refresh_room(room_name)

    def drop_participant(self, room_name: str, info: models.ParticipantInfo) -> None:
        """A participant left a live room (unless the server API removed it already, or it was replaced)."""
        with self._lock:
            current = self.participants.get(room_name, {}).get(info.identity)
            if current is not None and current.sid == info.sid:
                self._depart(room_name, info.identity, info.disconnect_reason)

    def drop_room(self, name: str) -> None:
        """A live room finished (its last participant left; DeleteRoom closed it already)."""
        with self._lock:
            if name in self.rooms:
                self._close_room(name, models.DisconnectReason.ROOM_CLOSED, models.ROOM_END_IDLE_TIMEOUT)

    def publish_track(self, room_name: str, identity: str, track: str | models.TrackInfo = "audio") -> models.TrackInfo:
        """A joined participant publishes one more track."""
        with self._lock:
            participant = self.participants[room_name][identity]
            published = _track(track)
            participant.tracks.append(published)
            participant.is_publisher = True
            self._refresh_room(room_name)
            return _copy(published)

    def remove_participant(self, room_name: str, identity: str) -> models.ParticipantInfo:
        """The participant leaves by themselves (CLIENT_INITIATED); returns its final state."""
        with self._lock:
            return self._depart(room_name, identity, models.DisconnectReason.CLIENT_INITIATED)

    def end_room(self, name: str) -> models.Room:
        """LiveKit closes the room by itself (empty timeout): participants leave, active egresses end."""
        with self._lock:
            return self._close_room(name, models.DisconnectReason.ROOM_CLOSED, models.ROOM_END_IDLE_TIMEOUT)

    def get_room(self, name: str) -> models.Room | None:
        with self._lock:
            found = self.rooms.get(name)
            return _copy(found) if found is not None else None

    def get_participant(self, room_name: str, identity: str) -> models.ParticipantInfo | None:
        with self._lock:
            found = self.participants.get(room_name, {}).get(identity)
            return _copy(found) if found is not None else None

    def get_egress(self, egress_id: str) -> egress.EgressInfo:
        with self._lock:
            return _copy(self.egresses[egress_id])

    def activate_egress(self, egress_id: str) -> egress.EgressInfo:
        """The egress pipeline started (when ``auto_activate_egress`` is off)."""
        with self._lock:
            info = self.egresses[egress_id]
            info.status = egress.EGRESS_ACTIVE
            info.started_at = info.updated_at = _now_ns()
            return _copy(info)

    def finish_egress(
        self,
        egress_id: str,
        *,
        size: int = 1_048_576,
        duration_ns: int | None = None,
        location: str | None = None,
        filename: str | None = None,
    ) -> egress.EgressInfo:
        """The recording is uploaded: EGRESS_COMPLETE with a FileInfo (defaults derived from the request)."""
        with self._lock:
            info = self.egresses[egress_id]
            request = self.egress_requests[egress_id]
            now = _now_ns()
            if not info.started_at:
                info.started_at = now - (duration_ns or 0)
            info.status = egress.EGRESS_COMPLETE
            info.ended_at = info.updated_at = now
            output = _file_output(request)
            if output is not None:
                name = filename or _file_name(request, output, self.rooms.get(info.room_name), info.started_at)
                result = egress.FileInfo(
                    filename=name,
                    started_at=info.started_at,
                    ended_at=now,
                    duration=duration_ns if duration_ns is not None else now - info.started_at,
                    size=size,
                    location=location or _location(output, name),
                )
                del info.file_results[:]
                info.file_results.append(result)
                info.file.CopyFrom(result)
            self._refresh_room(info.room_name)
            return _copy(info)

    def fail_egress(self, egress_id: str, error: str, error_code: int = 500) -> egress.EgressInfo:
        """The egress failed (EGRESS_FAILED with LiveKit's ``error`` / ``error_code``)."""
        with self._lock:
            info = self.egresses[egress_id]
            info.status = egress.EGRESS_FAILED
            info.error = error
            info.error_code = error_code
            info.ended_at = info.updated_at = _now_ns()
            self._refresh_room(info.room_name)
            return _copy(info)

    # ---------------------------------------------------------------- webhooks

    def webhook_event(self, event: str, **fields: Any) -> webhook.WebhookEvent:
        """A WebhookEvent with a fresh EV_ id and created_at; ``fields`` are WebhookEvent fields
        (room, participant, track, egress_info, ingress_info, room_end_reason, id, created_at)."""
        built = webhook.WebhookEvent(event=event, id=fields.pop("id", None) or guid("EV_"))
        built.created_at = fields.pop("created_at", None) or int(time.time())
        for name, value in fields.items():
            if value is None:
                continue
            if isinstance(value, Message):
                getattr(built, name).CopyFrom(value)
            else:
                setattr(built, name, value)
        return built

    def send_webhook(
        self,
        url: str | None,
        event: str | webhook.WebhookEvent,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        authorization: str | None = None,
        timeout: float = 10,
        **fields: Any,
    ) -> WebhookDelivery:
        """POST a webhook as livekit-server does. ``api_secret`` / ``api_key`` sign it with other credentials
        (a forgery); ``authorization`` replaces the header outright ("" sends none)."""
        target = url or self.webhook_url
        if not target:
            raise ValueError("no webhook URL: pass one or set webhook_url")
        built = event if isinstance(event, webhook.WebhookEvent) else self.webhook_event(event, **fields)
        body = webhook_body(built)
        header = (
            authorization
            if authorization is not None
            else sign_webhook(body, api_key or self.api_key, api_secret or self.api_secret)
        )
        return self._post_webhook(target, built, body, header, timeout)

    def resend_webhook(self, delivery: WebhookDelivery, timeout: float = 10) -> WebhookDelivery:
        """A retry: the same body and Authorization header again (same event id), as LiveKit's retries are."""
        return self._post_webhook(delivery.url, delivery.event, delivery.body, delivery.authorization, timeout)

    def _post_webhook(
        self, url: str, event: webhook.WebhookEvent, body: str, authorization: str, timeout: float
    ) -> WebhookDelivery:
        headers = {"Content-Type": WEBHOOK_CONTENT_TYPE}
        if authorization:
            headers["Authorization"] = authorization
        response = requests.post(url, data=body.encode(), headers=headers, timeout=timeout)
        delivery = WebhookDelivery(
            url, event, body, authorization, response.status_code, response.content, dict(response.headers)
        )
        with self._lock:
            self.webhooks_sent.append(delivery)
        return delivery

    def _room_snapshot(self, name: str) -> models.Room:
        with self._lock:
            found = self.rooms.get(name) or self.ended_rooms.get(name)
            if found is None:
                raise KeyError(f"no room {name!r} in the stand-in")
            return _copy(found)

    def _participant_snapshot(self, room_name: str, identity: str) -> models.ParticipantInfo:
        with self._lock:
            found = self.participants.get(room_name, {}).get(identity) or self.departed.get((room_name, identity))
            if found is None:
                raise KeyError(f"no participant {identity!r} in room {room_name!r}")
            return _copy(found)

    def room_started(self, room_name: str, *, url: str | None = None, **options: Any) -> WebhookDelivery:
        return self.send_webhook(url, "room_started", room=self._room_snapshot(room_name), **options)

    def room_finished(self, room_name: str, *, url: str | None = None, **options: Any) -> WebhookDelivery:
        options.setdefault("room_end_reason", self.room_end_reasons.get(room_name, models.ROOM_END_UNKNOWN))
        return self.send_webhook(url, "room_finished", room=self._room_snapshot(room_name), **options)

    def participant_joined(
        self, room_name: str, identity: str, *, url: str | None = None, **options: Any
    ) -> WebhookDelivery:
        return self.send_webhook(
            url,
            "participant_joined",
            room=self._room_snapshot(room_name),
            participant=self._participant_snapshot(room_name, identity),
            **options,
        )

    def participant_left(
        self, room_name: str, identity: str, *, url: str | None = None, **options: Any
    ) -> WebhookDelivery:
        return self.send_webhook(
            url,
            "participant_left",
            room=self._room_snapshot(room_name),
            participant=self._participant_snapshot(room_name, identity),
            **options,
        )

    def track_published(
        self, room_name: str, identity: str, track_sid: str, *, url: str | None = None, **options: Any
    ) -> WebhookDelivery:
        participant = self._participant_snapshot(room_name, identity)
        track = next(t for t in participant.tracks if t.sid == track_sid)
        return self.send_webhook(
            url, "track_published", room=self._room_snapshot(room_name), participant=participant, track=track, **options
        )

    def egress_started(self, egress_id: str, *, url: str | None = None, **options: Any) -> WebhookDelivery:
        return self.send_webhook(url, "egress_started", egress_info=self.get_egress(egress_id), **options)

    def egress_updated(self, egress_id: str, *, url: str | None = None, **options: Any) -> WebhookDelivery:
        return self.send_webhook(url, "egress_updated", egress_info=self.get_egress(egress_id), **options)

    def egress_ended(self, egress_id: str, *, url: str | None = None, **options: Any) -> WebhookDelivery:
        return self.send_webhook(url, "egress_ended", egress_info=self.get_egress(egress_id), **options)


# -------------------------------------------------------------------- module helpers


def _video(claims: api.access_token.Claims | None) -> api.VideoGrants:
    return claims.video if claims is not None and claims.video is not None else api.VideoGrants()


def _require_admin(video: api.VideoGrants, room_name: str) -> None:
    """livekit-server's EnsureAdminPermission: roomAdmin, and the token's room must be this room."""
    if not video.room_admin or video.room != room_name:
        raise _denied()


def _track(spec: str | models.TrackInfo) -> models.TrackInfo:
    if isinstance(spec, models.TrackInfo):
        track = _copy(spec)
    else:
        kinds = {
            "audio": (models.AUDIO, models.MICROPHONE, "microphone", "audio/opus"),
            "video": (models.VIDEO, models.CAMERA, "camera", "video/VP8"),
            "screen": (models.VIDEO, models.SCREEN_SHARE, "screen", "video/VP8"),
        }
        track_type, source, name, mime = kinds[spec]
        track = models.TrackInfo(type=track_type, source=source, name=name, mime_type=mime)
        if track_type == models.VIDEO:
            track.width, track.height = 1280, 720
    if not track.sid:
        track.sid = guid("TR_")
    return track


def _redacted(request: egress.RoomCompositeEgressRequest) -> egress.RoomCompositeEgressRequest:
    """The request as echoed in EgressInfo: storage credentials blanked out."""
    clean = _copy(request)
    outputs = [clean.file] if clean.HasField("file") else []
    outputs += list(clean.file_outputs)
    uploads = [clean.segments] if clean.HasField("segments") else []
    uploads += list(clean.segment_outputs) + list(clean.image_outputs)
    for output in outputs + uploads:
        if output.HasField("s3"):
            for name in ("access_key", "secret", "session_token"):
                if getattr(output.s3, name):
                    setattr(output.s3, name, REDACTED)
        if output.HasField("gcp") and output.gcp.credentials:
            output.gcp.credentials = REDACTED
        if output.HasField("azure") and output.azure.account_key:
            output.azure.account_key = REDACTED
        if output.HasField("aliOSS") and output.aliOSS.secret:
            output.aliOSS.secret = REDACTED
    return clean


def _file_output(request: egress.RoomCompositeEgressRequest) -> egress.EncodedFileOutput | None:
    if request.HasField("file"):
        return request.file
    return request.file_outputs[0] if request.file_outputs else None


def _file_name(
    request: egress.RoomCompositeEgressRequest,
    output: egress.EncodedFileOutput,
    target: models.Room | None,
    started_at_ns: int,
) -> str:
    """LiveKit Egress naming: ``{room_name}-{time}`` when no filepath, templates replaced, extension added."""
    started = datetime.fromtimestamp(started_at_ns / 1e9, tz=UTC)
    path = output.filepath or "{room_name}-{time}"
    if path.endswith("/"):
        path += "{room_name}-{time}"
    replacements = {
        "{room_name}": request.room_name,
        "{room_id}": target.sid if target is not None else "",
        "{time}": started.strftime("%Y-%m-%dT%H%M%S"),
        "{utc}": started.strftime("%Y%m%d%H%M%S%f")[:-3],
    }
    for template, value in replacements.items():
        path = path.replace(template, value)
    if "." not in path.rsplit("/", 1)[-1]:
        file_type = output.file_type
        if file_type == egress.DEFAULT_FILETYPE:
            file_type = egress.OGG if request.audio_only else egress.MP4
        path += _FILE_EXTENSIONS[file_type]
    return path


def _location(output: egress.EncodedFileOutput, name: str) -> str:
    """Where LiveKit Egress reports the upload: path-style under a custom S3 endpoint, else the AWS host."""
    if output.HasField("s3"):
        if output.s3.endpoint:
            return f"{output.s3.endpoint.rstrip('/')}/{output.s3.bucket}/{name}"
        return f"https://{output.s3.bucket}.s3.amazonaws.com/{name}"
    if output.HasField("gcp"):
        return f"https://storage.googleapis.com/{output.gcp.bucket}/{name}"
    if output.HasField("azure"):
        return f"https://{output.azure.account_name}.blob.core.windows.net/{output.azure.container_name}/{name}"
    return name


def webhook_body(event: webhook.WebhookEvent) -> str:
    """The event as livekit-server serialises it: protojson (camelCase, defaults omitted), compact, UTF-8."""
    return json.dumps(json_format.MessageToDict(event), separators=(",", ":"), ensure_ascii=False)


def sign_webhook(body: str, api_key: str, api_secret: str) -> str:
    """livekit-server's webhook signature: the bare JWT of a 5-minute token carrying sha256(body) in base64."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(api_key, api_secret).with_ttl(timedelta(minutes=5)).with_sha256(digest).to_jwt()


def running_standin(api_key: str, api_secret: str, **options: Any) -> Iterator[LiveKitStandIn]:
    """For pytest fixtures: ``yield from running_standin(key, secret)`` starts it and stops it afterwards."""
    with LiveKitStandIn(api_key, api_secret, **options) as standin:
        yield standin


__all__ = [
    "JSON",
    "PROTOBUF",
    "TWIRP_HTTP_STATUS",
    "WEBHOOK_CONTENT_TYPE",
    "LiveKitStandIn",
    "ReceivedCall",
    "TwirpReplyError",
    "WebhookDelivery",
    "guid",
    "running_standin",
    "sign_webhook",
    "webhook_body",
]
