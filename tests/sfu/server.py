"""The SFU stand-in: livekit-server's client signalling (``/rtc``) and media/data forwarding, with real WebRTC.

Read from livekit-server (pkg/service/rtcservice.go, auth.go, utils.go, pkg/rtc/participant.go, room.go) and the
SDKs' signal clients (rust-sdks livekit-api/src/signal_client, livekit/src/rtc_engine; client-sdk-js
src/api/SignalClient.ts), not guessed:

* ``/rtc`` (the "v0", dual peer connection protocol): the upgrade request's ``access_token`` is verified with the
  API secret (livekit-api's ``TokenVerifier``, one minute of leeway like go-jose); a bad or expired token, or one
  without ``roomJoin``, is an HTTP 401 before the upgrade, a missing identity or room a 400, with livekit-server's
  messages. ``/rtc/validate`` answers the same checks with ``success``. ``/rtc/v1`` (single peer connection) is a
  404, which makes the SDKs fall back to ``/rtc``.
* Frames are protobuf ``SignalRequest`` in, ``SignalResponse`` out. A join is answered with ``JoinResponse``
  (subscriber primary, no ICE servers, ping interval/timeout), then the server offers the subscriber peer
  connection (data channels ``_reliable`` and ``_lossy``, one sendonly audio/video section per subscribed track
  whose stream id is ``PA_sid|TR_sid`` and track id ``TR_sid``); the client offers the publisher connection.
  ICE runs on 127.0.0.1 only; the stand-in's candidates are in its SDP, the client's arrive by trickle.
* ``AddTrackRequest`` -> ``TrackPublishedResponse`` (or ``RequestResponse`` NOT_ALLOWED without canPublish or
  the source in canPublishSources); when the media arrives the track is announced (``ParticipantUpdate``) and
  sent to every other participant with canSubscribe (auto-subscribe; ``UpdateSubscription`` honoured). A track
  missing from a later publisher offer is unpublished. ``MuteTrackRequest`` updates the TrackInfo.
* Data packets from the publisher's ``_reliable``/``_lossy`` channels go out on the same-named subscriber channels
  of the other participants (only those in ``destination_identities`` when set), with the sender's identity and
  sid filled in; without canPublishData they are dropped. Text/byte streams are data packets and travel alike.
* Hidden participants are not announced. ``LeaveRequest`` or a closed WebSocket removes the participant, its
  tracks are unpublished to the others; a duplicate identity replaces the older connection.

Audio is decoded and re-encoded for each subscriber (frames are forwarded, not RTP packets: ``media.FanOut``).
Every notable thing is recorded as an ``Event`` for tests to wait on.

Not done, where livekit-server does it: the single peer connection protocol; resuming (a ``reconnect=1`` join is
a fresh join); the ping timeout; simulcast, RED and DTX pass-through; SpeakersChanged, connection quality and
stream state updates; track-level subscription permissions; data tracks (the SDK's ``_data_track`` channel);
E2EE; empty/departure timeouts (a room ends with its last participant). The full list is in ``tests/sfu``'s docstring.

For the server API, webhooks and agents on the same port and rooms, ``listeners`` see every event (on the
stand-in's loop, before tests do), ``room_source`` gives a room the server API created before anyone joined, and the
server-API actions (``remove_participant``, ``mute_track``...) act on live participants: see livekit_server.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
from aiohttp import WSMsgType, web
from aiortc import MediaStreamTrack, RTCRtpTransceiver, RTCSessionDescription
from google.protobuf.message import Message
from livekit import api
from livekit.protocol import models, rtc

from tests.sfu.media import FanOut, keep_ice_on_loopback, parse_candidate, peer_connection, sending_tracks
from tests.sfu.state import (
    LOSSY,
    RELIABLE,
    Participant,
    PublishedTrack,
    Room,
    Subscription,
    guid,
    participant_kind,
    permission,
)
from tests.support.background import BackgroundAiohttpServer

log = logging.getLogger(__name__)

PROTOCOL = 16
PING_INTERVAL = 5  # seconds, livekit-server's defaults
PING_TIMEOUT = 15
ANSWER_TIMEOUT = 20.0
T = TypeVar("T")
M = TypeVar("M", bound=Message)
# livekit-server's auth middleware lets browsers read validate answers from any origin.
_VALIDATE_HEADERS = {"Access-Control-Allow-Origin": "*"}


@dataclass(frozen=True)
class Event:
    """Something the stand-in did: ``participant_joined``, ``track_published``, ``data_dropped``..."""

    kind: str
    room: str
    identity: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class JoinRefusedError(Exception):
    """A join refused before the upgrade, with livekit-server's status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SFUStandIn(BackgroundAiohttpServer):
    """livekit-server's ``/rtc`` endpoint with real WebRTC media and data. Context manager or start/stop."""

    name = "SFU stand-in"

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        more_routes: Callable[[web.Application], None] | None = None,
        room_source: Callable[[str], models.Room | None] | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.api_secret = api_secret
        self._more_routes = more_routes
        self._room_source = room_source
        self.events: list[Event] = []
        self.listeners: list[Callable[[Event], None]] = []  # called on the stand-in's loop, after each event
        self._rooms: dict[str, Room] = {}
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._changed = threading.Condition(threading.RLock())
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> SFUStandIn:
        keep_ice_on_loopback()
        return super().start()

    @property
    def url(self) -> str:
        """What an SDK is given as the LiveKit URL (it appends ``/rtc``)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        """Serve ``/rtc`` (and its validate and v1 paths) from ``app``: how the stand-in shares a port."""
        app.router.add_get("/rtc/v1{tail:.*}", self._v1)
        app.router.add_get("/rtc/validate", self._validate)
        app.router.add_get("/rtc", self._rtc)
        app.on_shutdown.append(lambda _app: self._close_rooms())

    # ---------------------------------------------------------------- test API (thread-safe)

    def token(self, identity: str, room: str, *, kind: str = "", **grants: Any) -> str:
        """A one-hour join token for ``room`` signed with this stand-in's key; ``grants`` override VideoGrants."""
        token = api.AccessToken(self.api_key, self.api_secret).with_identity(identity).with_name(identity)
        if kind:
            token = token.with_kind(kind)
        return token.with_grants(api.VideoGrants(room_join=True, room=room, **grants)).to_jwt()

    def wait_for(self, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
        """Block until ``probe`` (run under the state lock) returns something truthy; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = probe()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("the SFU stand-in never saw what the test waited for")
                self._changed.wait(remaining)

    def wait_event(
        self, kind: str, room: str | None = None, identity: str | None = None, timeout: float = 20.0
    ) -> Event:
        """The first recorded event of ``kind`` (in ``room``, from ``identity``), waiting for it if need be."""
        return self.wait_for(lambda: next(iter(self.find_events(kind, room, identity)), None), timeout)

    def find_events(self, kind: str, room: str | None = None, identity: str | None = None) -> list[Event]:
        with self._changed:
            return [
                e for e in self.events if e.kind == kind and room in (None, e.room) and identity in (None, e.identity)
            ]

    def participants(self, room: str) -> dict[str, models.ParticipantInfo]:
        """The participants in ``room`` now, by identity (copies; hidden ones included)."""
        with self._changed:
            found = self._rooms.get(room)
            return {} if found is None else {p.identity: p.view() for p in found.participants.values()}

    def rooms(self) -> list[str]:
        with self._changed:
            return sorted(self._rooms)

    def subscriptions(self, room: str, identity: str) -> list[str]:
        """The track sids sent down ``identity``'s subscriber connection."""
        with self._changed:
            found = self._rooms.get(room)
            participant = found.participants.get(identity) if found else None
            return [] if participant is None else sorted(participant.subscriptions)

    # ---------------------------------------------------------------- server-API actions (thread-safe, not awaited)

    def remove_participant(self, room: str, identity: str, reason: int = models.PARTICIPANT_REMOVED) -> Future[None]:
        """RemoveParticipant: a LeaveRequest with ``reason``, then the participant is gone."""
        return self.soon(self._evict_identity(room, identity, reason))

    def close_room(self, room: str, reason: int = models.ROOM_DELETED) -> Future[None]:
        """DeleteRoom: everyone gets a LeaveRequest with ``reason`` and the room finishes."""
        return self.soon(self._evict_all(room, reason))

    def mute_track(self, room: str, identity: str, sid: str, muted: bool) -> Future[None]:
        """MutePublishedTrack: the publisher is told to mute (``SignalResponse.mute``) and the others updated."""
        return self.soon(self._mute_remotely(room, identity, sid, muted))

    def update_participant(
        self,
        room: str,
        identity: str,
        *,
        name: str = "",
        metadata: str = "",
        attributes: Mapping[str, str] | None = None,
        grants: models.ParticipantPermission | None = None,
    ) -> Future[None]:
        """UpdateParticipant: a ParticipantUpdate to the participant and everyone else."""
        return self.soon(self._update_remotely(room, identity, name, metadata, dict(attributes or {}), grants))

    def send_data(self, room: str, packet: models.DataPacket) -> Future[None]:
        """SendData: a DataPacket with no sender to the room (only to its ``destination_identities`` when set)."""
        return self.soon(self._send_from_server(room, packet))

    def _find(self, room: str, identity: str) -> Participant | None:
        found = self._rooms.get(room)
        participant = found.participants.get(identity) if found is not None else None
        return participant if participant is not None and not participant.gone else None

    async def _evict(self, participant: Participant, reason: int) -> None:
        await self._send(participant, leave=rtc.LeaveRequest(reason=reason, action=rtc.LeaveRequest.DISCONNECT))
        participant.info.disconnect_reason = reason
        await self._remove(participant)
        await participant.ws.close()

    async def _evict_identity(self, room: str, identity: str, reason: int) -> None:
        participant = self._find(room, identity)
        if participant is not None:
            await self._evict(participant, reason)

    async def _evict_all(self, room: str, reason: int) -> None:
        found = self._rooms.get(room)
        for participant in list(found.participants.values()) if found is not None else []:
            await self._evict(participant, reason)

    async def _mute_remotely(self, room: str, identity: str, sid: str, muted: bool) -> None:
        participant = self._find(room, identity)
        if participant is not None:
            await self._send(participant, mute=rtc.MuteTrackRequest(sid=sid, muted=muted))
            await self._mute(participant, sid, muted)

    async def _update_remotely(
        self,
        room: str,
        identity: str,
        name: str,
        metadata: str,
        attributes: dict[str, str],
        grants: models.ParticipantPermission | None,
    ) -> None:
        participant = self._find(room, identity)
        if participant is not None:
            await self._apply_update(participant, name, metadata, attributes, grants)

    async def _send_from_server(self, room: str, packet: models.DataPacket) -> None:
        found = self._rooms.get(room)
        if found is None:
            return
        destinations = set(packet.destination_identities) | set(packet.user.destination_identities)
        label = LOSSY if packet.kind == models.DataPacket.LOSSY else RELIABLE
        data = packet.SerializeToString()
        recipients = [
            p for p in found.participants.values() if not p.gone and (not destinations or p.identity in destinations)
        ]
        for participant in recipients:
            participant.unsent.setdefault(label, []).append(data)
            self._flush(participant, label)
        self._record("data_forwarded", room, "", label=label, payload="user", to=[p.identity for p in recipients])

    # ---------------------------------------------------------------- server

    def serve_routes(self, app: web.Application) -> None:
        self.add_routes(app)
        if self._more_routes is not None:
            self._more_routes(app)

    async def _close_rooms(self) -> None:
        """Server shutdown: every participant disconnected, every room finished."""
        for room in list(self._rooms.values()):
            for participant in list(room.participants.values()):
                participant.info.disconnect_reason = models.SERVER_SHUTDOWN
                await participant.ws.close()
                await self._remove(participant)

    async def _shutdown(self) -> None:
        await super()._shutdown()
        # What aiortc left running (encoders, decoders of closed connections) ends with the loop, not after it.
        leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` in the background, kept referenced until done; a failure is logged, not lost."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SFU stand-in task failed", exc_info=task.exception())

    def _record(self, kind: str, room: str, identity: str = "", /, **detail: Any) -> None:
        event = Event(kind, room, identity, detail)
        for listener in self.listeners:  # first: a test that saw the event sees what listeners made of it
            listener(event)
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def _claims(self, request: web.Request) -> api.access_token.Claims:
        """livekit-server's APIKeyAuthMiddleware + ValidateConnectRequest, same statuses and messages."""
        token = request.query.get("access_token", "")
        header = request.headers.get("Authorization", "")
        if header:
            if not header.startswith("Bearer "):
                raise JoinRefusedError(401, "invalid authorization header. Must start with Bearer ")
            token = header[len("Bearer ") :]
        if not token:
            raise JoinRefusedError(401, "permissions denied")
        try:
            claims = self._verifier.verify(token)
        except jwt.PyJWTError as error:
            raise JoinRefusedError(401, f"invalid authorization token: {error}") from error
        if claims.video is None or not claims.video.room_join:
            raise JoinRefusedError(401, "permissions denied")
        if not claims.identity:
            raise JoinRefusedError(400, "participant identity cannot be empty")
        if not claims.video.room:
            raise JoinRefusedError(400, "room name cannot be empty")
        return claims

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        """The single peer connection protocol is not served: the SDKs fall back to ``/rtc`` on this 404
        (livekit-client learns it from ``/rtc/v1/validate``, fetched cross-origin, hence the CORS header)."""
        return web.Response(status=404, text="404 page not found", headers=_VALIDATE_HEADERS)

    async def _validate(self, request: web.Request) -> web.StreamResponse:
        try:
            self._claims(request)
        except JoinRefusedError as refused:
            return web.Response(status=refused.status, text=refused.message, headers=_VALIDATE_HEADERS)
        return web.Response(text="success", headers=_VALIDATE_HEADERS)

    async def _rtc(self, request: web.Request) -> web.StreamResponse:
        try:
            claims = self._claims(request)
        except JoinRefusedError as refused:
            self._record("join_refused", "", "", status=refused.status, message=refused.message)
            return web.Response(status=refused.status, text=refused.message)
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        participant = await self._join(claims, ws, request.query)
        try:
            async for frame in ws:
                if frame.type != WSMsgType.BINARY:
                    continue
                if not await self._on_signal(participant, rtc.SignalRequest.FromString(frame.data)):
                    break
        finally:
            if not participant.info.disconnect_reason:
                participant.info.disconnect_reason = models.SIGNAL_CLOSE
            await self._remove(participant)
        return ws

    # ---------------------------------------------------------------- signalling

    async def _send(self, participant: Participant, **message: Any) -> None:
        if participant.ws.closed:
            return
        try:
            await participant.ws.send_bytes(rtc.SignalResponse(**message).SerializeToString())
        except ConnectionError:
            log.debug("signal connection of %s closed while sending", participant.identity)

    async def _join(
        self, claims: api.access_token.Claims, ws: web.WebSocketResponse, query: Mapping[str, str]
    ) -> Participant:
        """Create the participant, answer the join, announce it and offer its subscriber connection."""
        assert claims.video is not None
        name = claims.video.room
        room = self._rooms.get(name)
        if room is None:
            known = self._room_source(name) if self._room_source is not None else None
            with self._changed:
                room = self._rooms[name] = Room(known) if known is not None else Room.create(name)
            self._record("room_started", name, room=snapshot(room.view()))
        now = time.time()
        info = models.ParticipantInfo(
            sid=guid("PA_"),
            identity=claims.identity,
            name=claims.name,
            state=models.ParticipantInfo.JOINED,
            metadata=claims.metadata,
            attributes=claims.attributes or {},
            joined_at=int(now),
            joined_at_ms=int(now * 1000),
            version=1,
            permission=permission(claims.video),
            kind=participant_kind(claims.kind),
            client_protocol=_int(query.get("client_protocol")),
            capabilities=_capabilities(query.get("capabilities", "")),
        )
        auto_subscribe = query.get("auto_subscribe", "1") in ("1", "true")
        participant = Participant(info, room, ws, peer_connection(), peer_connection(), auto_subscribe)
        self._wire(participant)
        with self._changed:
            previous = room.participants.get(participant.identity)
            room.participants[participant.identity] = participant
        if previous is not None:
            leave = rtc.LeaveRequest(reason=models.DUPLICATE_IDENTITY, action=rtc.LeaveRequest.DISCONNECT)
            await self._send(previous, leave=leave)
            previous.info.disconnect_reason = models.DUPLICATE_IDENTITY
            await self._remove(previous)
            await previous.ws.close()
        others = [o.view() for o in room.others(participant) if not o.hidden]
        server_info = models.ServerInfo(
            edition=models.ServerInfo.Standard, version="1.9.0", protocol=PROTOCOL, node_id="ND_sfu-standin"
        )
        join = rtc.JoinResponse(
            room=room.view(),
            participant=participant.view(),
            other_participants=others,
            server_version=server_info.version,
            subscriber_primary=True,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            server_info=server_info,
        )
        await self._send(participant, join=join)
        await self._announce(participant)
        if participant.auto_subscribe:
            for other in room.others(participant):
                for track in other.tracks.values():
                    self._subscribe(participant, track)
        self._negotiate(participant)
        self._record("participant_joined", name, participant.identity, sid=participant.sid, **_about(participant))
        return participant

    def _wire(self, participant: Participant) -> None:
        """Peer connection callbacks: media and data from the publisher, data channels towards the subscriber."""

        def on_datachannel(channel: Any) -> None:
            channel.on("message", lambda message: self._on_data(participant, channel.label, message))

        async def on_connection_state() -> None:
            if participant.subscriber.connectionState == "connected" and not participant.gone:
                participant.info.state = models.ParticipantInfo.ACTIVE
                await self._announce(participant)
                for track in participant.deferred:
                    self._subscribe(participant, track)
                participant.deferred.clear()

        participant.publisher.on("datachannel", on_datachannel)
        participant.subscriber.on("connectionstatechange", on_connection_state)
        participant.publisher.on("track", lambda track: self._on_media(participant, track))
        for label in (RELIABLE, LOSSY):
            lossy = label == LOSSY
            channel = participant.subscriber.createDataChannel(
                label, ordered=not lossy, maxRetransmits=0 if lossy else None
            )
            participant.channels[label] = channel
            channel.on("open", lambda label=label: self._flush(participant, label))

    async def _on_signal(self, participant: Participant, request: rtc.SignalRequest) -> bool:
        """Handle one client message; False once the participant left."""
        kind = request.WhichOneof("message")
        if kind == "offer":
            await self._on_offer(participant, request.offer)
        elif kind == "answer":
            if participant.answer is not None and not participant.answer.done():
                participant.answer.set_result(request.answer)
        elif kind == "trickle":
            await self._on_trickle(participant, request.trickle)
        elif kind == "add_track":
            await self._add_track(participant, request.add_track)
        elif kind == "mute":
            await self._mute(participant, request.mute.sid, request.mute.muted)
        elif kind == "subscription":
            self._update_subscription(participant, request.subscription)
        elif kind == "update_metadata":
            await self._update_metadata(participant, request.update_metadata)
        elif kind == "ping":
            await self._send(participant, pong=int(time.time() * 1000))
        elif kind == "ping_req":
            pong = rtc.Pong(last_ping_timestamp=request.ping_req.timestamp, timestamp=int(time.time() * 1000))
            await self._send(participant, pong_resp=pong)
        elif kind == "leave":
            participant.info.disconnect_reason = models.CLIENT_INITIATED
            self._record("leave_requested", participant.room.info.name, participant.identity)
            return False
        return True

    async def _on_offer(self, participant: Participant, offer: rtc.SessionDescription) -> None:
        """The client (re)negotiates its publisher connection: answer it, unpublish tracks it stopped sending."""
        publisher = participant.publisher
        participant.offered = sending_tracks(offer.sdp)
        await publisher.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await self._add_early_candidates(participant, rtc.PUBLISHER)
        await publisher.setLocalDescription(await publisher.createAnswer())
        answer = rtc.SessionDescription(type="answer", sdp=publisher.localDescription.sdp, id=offer.id)
        await self._send(participant, answer=answer)
        sending = set(participant.offered.values())
        for track in [t for t in participant.tracks.values() if t.cid not in sending]:
            await self._unpublish(track)

    async def _on_trickle(self, participant: Participant, trickle: rtc.TrickleRequest) -> None:
        candidate = parse_candidate(trickle.candidateInit)
        if candidate is None:
            return
        connection = participant.subscriber if trickle.target == rtc.SUBSCRIBER else participant.publisher
        if connection.remoteDescription is None:
            participant.early_candidates.setdefault(trickle.target, []).append(candidate)
        else:
            await connection.addIceCandidate(candidate)

    async def _add_early_candidates(self, participant: Participant, target: int) -> None:
        connection = participant.subscriber if target == rtc.SUBSCRIBER else participant.publisher
        for candidate in participant.early_candidates.pop(target, []):
            await connection.addIceCandidate(candidate)

    def _negotiate(self, participant: Participant) -> None:
        """(Re)offer the subscriber connection: one offer in flight at a time, changes meanwhile coalesced."""
        participant.renegotiate = True
        if participant.negotiating is None or participant.negotiating.done():
            participant.negotiating = asyncio.ensure_future(self._offer_subscriber(participant))
            participant.negotiating.add_done_callback(self._done)

    async def _offer_subscriber(self, participant: Participant) -> None:
        subscriber = participant.subscriber
        while participant.renegotiate and not participant.gone:
            participant.renegotiate = False
            await subscriber.setLocalDescription(await subscriber.createOffer())
            participant.answer = asyncio.get_running_loop().create_future()
            offer = rtc.SessionDescription(type="offer", sdp=subscriber.localDescription.sdp)
            await self._send(participant, offer=offer)
            try:
                answer = await asyncio.wait_for(participant.answer, ANSWER_TIMEOUT)
            except TimeoutError:
                log.warning("%s never answered the subscriber offer", participant.identity)
                return
            if participant.gone:
                return
            await subscriber.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            await self._add_early_candidates(participant, rtc.SUBSCRIBER)

    async def _announce(self, participant: Participant) -> None:
        """A ParticipantUpdate about ``participant`` to everyone else in the room (nobody if it is hidden)."""
        participant.info.version += 1
        if participant.hidden:
            return
        update = rtc.ParticipantUpdate(participants=[participant.view()])
        for other in participant.room.others(participant):
            await self._send(other, update=update)

    async def _update_metadata(self, participant: Participant, request: rtc.UpdateParticipantMetadata) -> None:
        if not participant.info.permission.can_update_metadata:
            reason = rtc.RequestResponse.NOT_ALLOWED
            response = rtc.RequestResponse(request_id=request.request_id, reason=reason, update_metadata=request)
            await self._send(participant, request_response=response)
            return
        await self._apply_update(participant, request.name, request.metadata, request.attributes)

    async def _apply_update(
        self,
        participant: Participant,
        name: str,
        metadata: str,
        attributes: Mapping[str, str],
        grants: models.ParticipantPermission | None = None,
    ) -> None:
        """New name, metadata, attributes (an empty value removes one) or permission: told to everyone."""
        if name:
            participant.info.name = name
        if metadata:
            participant.info.metadata = metadata
        for key, value in attributes.items():
            if value:
                participant.info.attributes[key] = value
            else:
                participant.info.attributes.pop(key, None)
        if grants is not None:
            participant.info.permission.CopyFrom(grants)
        await self._send(participant, update=rtc.ParticipantUpdate(participants=[participant.view()]))
        await self._announce(participant)
        self._record(
            "participant_updated",
            participant.room.info.name,
            participant.identity,
            sid=participant.sid,
            **_about(participant),
        )

    # ---------------------------------------------------------------- tracks

    async def _add_track(self, participant: Participant, request: rtc.AddTrackRequest) -> None:
        allowed = participant.info.permission
        sources = allowed.can_publish_sources
        if not allowed.can_publish or (sources and request.source not in sources):
            response = rtc.RequestResponse(reason=rtc.RequestResponse.NOT_ALLOWED, add_track=request)
            await self._send(participant, request_response=response)
            self._record("publish_refused", participant.room.info.name, participant.identity, cid=request.cid)
            return
        info = models.TrackInfo(
            sid=guid("TR_"),
            type=request.type,
            name=request.name,
            muted=request.muted,
            width=request.width,
            height=request.height,
            source=request.source,
            disable_dtx=request.disable_dtx,
            stereo=request.stereo,
            disable_red=request.disable_red,
            encryption=request.encryption,
            stream=request.stream,
            audio_features=request.audio_features,
            mime_type="audio/opus" if request.type == models.AUDIO else "video/VP8",
        )
        participant.pending_tracks[request.cid] = PublishedTrack(request.cid, info, participant)
        await self._send(participant, track_published=rtc.TrackPublishedResponse(cid=request.cid, track=info))

    def _on_media(self, participant: Participant, media: MediaStreamTrack) -> None:
        """Media arrived for a track the participant announced: publish it to the room."""
        mid = next((t.mid or "" for t in participant.publisher.getTransceivers() if t.receiver.track is media), "")
        track = participant.pending_tracks.pop(participant.offered.get(mid, ""), None)
        if track is None:
            log.warning("%s sent media (mid %s) for no track it announced", participant.identity, mid)
            return
        track.fan_out = FanOut(media)
        track.info.mid = mid
        track.pump = self._spawn(track.fan_out.run())
        self._spawn(self._publish(track))

    async def _publish(self, track: PublishedTrack) -> None:
        participant = track.publisher
        with self._changed:
            participant.tracks[track.sid] = track
        await self._announce(participant)
        for other in participant.room.others(participant):
            if other.auto_subscribe:
                self._subscribe(other, track)
        self._record(
            "track_published",
            participant.room.info.name,
            participant.identity,
            sid=track.sid,
            cid=track.cid,
            track=snapshot(track.info),
            **_about(participant),
        )

    async def _unpublish(self, track: PublishedTrack) -> None:
        participant = track.publisher
        with self._changed:
            participant.tracks.pop(track.sid, None)
        for other in participant.room.others(participant):
            self._unsubscribe(other, track.sid)
        if track.pump is not None:
            track.pump.cancel()
        if not participant.gone:
            await self._announce(participant)
        self._record(
            "track_unpublished",
            participant.room.info.name,
            participant.identity,
            sid=track.sid,
            track=snapshot(track.info),
            **_about(participant),
        )

    def _subscribe(self, subscriber: Participant, track: PublishedTrack) -> None:
        """Send ``track`` down ``subscriber``'s connection (if it may subscribe): a new sendonly section."""
        if track.sid in subscriber.subscriptions or track.publisher.tracks.get(track.sid) is not track:
            return
        if not subscriber.info.permission.can_subscribe:
            self._record("subscription_refused", subscriber.room.info.name, subscriber.identity, sid=track.sid)
            return
        if subscriber.subscriber.connectionState != "connected":
            # aiortc needs its first offer to carry the data channels alone (they own the bundled transport: with
            # a media section first, the answer would stop it) and starts a sender negotiated while DTLS is still
            # connecting never: media waits for the subscriber connection.
            subscriber.deferred.append(track)
            return
        assert track.fan_out is not None  # published tracks have their media
        copy = track.fan_out.copy()
        transceiver: RTCRtpTransceiver = subscriber.subscriber.addTransceiver(copy, direction="sendonly")
        # The SDKs find the publisher and the track from the stream id "PA_sid|TR_sid" and the track id "TR_sid".
        transceiver.sender._stream_id = f"{track.publisher.sid}|{track.sid}"
        transceiver.sender._track_id = track.sid
        with self._changed:
            subscriber.subscriptions[track.sid] = Subscription(track, transceiver, copy)
        self._negotiate(subscriber)
        self._record("track_subscribed", subscriber.room.info.name, subscriber.identity, sid=track.sid)

    def _unsubscribe(self, subscriber: Participant, sid: str) -> None:
        with self._changed:
            subscription = subscriber.subscriptions.pop(sid, None)
        if subscription is None:
            return
        subscription.copy.stop()
        subscription.transceiver.direction = "inactive"
        # The section stays in the SDP; its msid must not name the track again (libwebrtc rejects duplicate msid
        # lines, the Rust SDK panics on them) when the track is subscribed anew on a fresh section.
        subscription.transceiver.sender._stream_id = "-"
        subscription.transceiver.sender._track_id = guid("unsubscribed-")
        if not subscriber.gone:
            self._negotiate(subscriber)
        self._record("track_unsubscribed", subscriber.room.info.name, subscriber.identity, sid=sid)

    def _update_subscription(self, participant: Participant, request: rtc.UpdateSubscription) -> None:
        sids = set(request.track_sids)
        for entry in request.participant_tracks:
            sids.update(entry.track_sids)
        tracks = {sid: t for other in participant.room.others(participant) for sid, t in other.tracks.items()}
        for sid in sids:
            if request.subscribe and sid in tracks:
                self._subscribe(participant, tracks[sid])
            elif not request.subscribe:
                self._unsubscribe(participant, sid)

    async def _mute(self, participant: Participant, sid: str, muted: bool) -> None:
        pending = {t.sid: t for t in participant.pending_tracks.values()}
        track = participant.tracks.get(sid) or pending.get(sid)
        if track is None or track.info.muted == muted:
            return
        track.info.muted = muted
        await self._announce(participant)
        self._record(
            "track_muted", participant.room.info.name, participant.identity, sid=sid, muted=muted, **_about(participant)
        )

    # ---------------------------------------------------------------- data

    def _on_data(self, participant: Participant, label: str, message: bytes | str) -> None:
        """A DataPacket from the participant's publisher channel, forwarded as livekit-server does."""
        room = participant.room.info.name
        if not isinstance(message, bytes) or participant.gone:
            return
        packet = models.DataPacket.FromString(message)
        kind = packet.WhichOneof("value") or ""
        if not participant.info.permission.can_publish_data:
            self._record("data_dropped", room, participant.identity, label=label, payload=kind)
            return
        if self._speaks_for_another(participant, packet):
            packet.stream_header.text_header.generated = True  # an agent's caption keeps the speaker's identity
        else:
            packet.participant_identity = participant.identity
        packet.participant_sid = participant.sid
        destinations = set(packet.destination_identities)
        if packet.HasField("user"):
            packet.user.participant_identity = participant.identity
            packet.user.participant_sid = participant.sid
            destinations.update(packet.user.destination_identities)
        data = packet.SerializeToString()
        recipients = [
            other
            for other in participant.room.others(participant)
            if not destinations or other.identity in destinations
        ]
        for other in recipients:
            other.unsent.setdefault(label, []).append(data)
            self._flush(other, label)
        self._record(
            "data_forwarded", room, participant.identity, label=label, payload=kind, to=[o.identity for o in recipients]
        )

    @staticmethod
    def _speaks_for_another(participant: Participant, packet: models.DataPacket) -> bool:
        """livekit-server keeps the sender identity an agent names on a text stream's header (transcriptions)."""
        return (
            participant.info.kind == models.ParticipantInfo.Kind.AGENT
            and packet.HasField("stream_header")
            and packet.stream_header.HasField("text_header")
            and packet.participant_identity not in ("", participant.identity)
        )

    def _flush(self, participant: Participant, label: str) -> None:
        """Send what waits for a subscriber data channel, once it is open."""
        channel = participant.channels.get(label)
        if channel is None or channel.readyState != "open":
            return
        for data in participant.unsent.pop(label, []):
            channel.send(data)

    # ---------------------------------------------------------------- leaving

    async def _remove(self, participant: Participant) -> None:
        """The participant is gone (left, disconnected, replaced): unpublish its tracks, tell the others."""
        if participant.gone:
            return
        participant.gone = True
        room = participant.room
        name = room.info.name
        for track in list(participant.tracks.values()):
            await self._unpublish(track)
        for sid in list(participant.subscriptions):
            self._unsubscribe(participant, sid)
        with self._changed:
            if room.participants.get(participant.identity) is participant:
                del room.participants[participant.identity]
        participant.info.state = models.ParticipantInfo.DISCONNECTED
        await self._announce(participant)
        if participant.answer is not None and not participant.answer.done():
            participant.answer.cancel()
        await participant.publisher.close()
        await participant.subscriber.close()
        self._record("participant_left", name, participant.identity, sid=participant.sid, **_about(participant))
        if not room.participants:
            with self._changed:
                self._rooms.pop(name, None)
            self._record("room_finished", name, room=snapshot(room.view()))


def snapshot(message: M) -> M:
    """A copy of a protobuf message, safe to keep while the original changes."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _about(participant: Participant) -> dict[str, Any]:
    """Event details naming a participant: snapshots of it and its room (what webhooks carry)."""
    return {"participant": participant.view(), "room": snapshot(participant.room.view())}


def _int(value: str | None) -> int:
    """A query parameter as livekit-server's strconv.ParseInt reads it: 0 when absent or not a number."""
    try:
        return int(value or "0")
    except ValueError:
        return 0


def _capabilities(names: str) -> list[int]:
    """The ``capabilities`` query parameter (comma-separated ClientInfo.Capability names), unknown names skipped."""
    known = dict(models.ClientInfo.Capability.items())
    return [known[name] for name in (n.strip() for n in names.split(",")) if name in known]
