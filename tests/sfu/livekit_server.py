"""One LiveKit stand-in on one port and one room state: the SFU's ``/rtc``, the server API and ``/agent``.

livekit-server serves its client signalling, its Twirp server API and the agent-worker WebSocket from one HTTP
server over one set of rooms. ``LiveKitServer`` does the same with the three stand-ins:

* ``sfu`` (``SFUStandIn``) owns the aiohttp app and the port and holds the live rooms.
* ``twirp`` (``LiveKitStandIn``) answers ``/twirp/...`` and ``/`` through a forwarder to its internal port. What
  the SFU does is mirrored into its state as it happens (rooms it opens, participants as they join, publish, are
  updated and leave), so ListRooms / ListParticipants / GetParticipant answer from the live rooms; calls that act on
  a participant or room (RemoveParticipant, MutePublishedTrack, UpdateParticipant, SendData, DeleteRoom,
  CreateDispatch) are passed to the SFU and the agent stand-in (``LiveRooms``). Its helpers that simulate a world
  without media (``add_participant``, ``publish_track``...) keep working beside the live rooms.
* ``agents`` (``AgentWorkerStandIn``) serves ``/agent`` on the same app: a CreateDispatch assigns the job to a
  registered worker, which joins the room over ``/rtc`` with the token it was given, on the same URL.
* Webhooks (room_started/finished, participant_joined/left, track_published/unpublished) go to ``webhook_url``,
  signed as livekit-server signs them, from the live events, in order, from one sender thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests
from aiohttp import ClientSession, web
from livekit.protocol import agent_dispatch, models

from tests.sfu.server import Event, SFUStandIn
from tests.support.background import Running
from tests.support.livekit_agent_standin import AgentWorkerStandIn, DispatchedJob
from tests.support.livekit_standin import LiveKitStandIn

log = logging.getLogger(__name__)

_FORWARDED_HEADERS = ("Authorization", "Content-Type")
WEBHOOK_EVENTS = (
    "room_started",
    "room_finished",
    "participant_joined",
    "participant_left",
    "track_published",
    "track_unpublished",
)
_PARTICIPANT_CHANGES = (
    "participant_joined",
    "participant_updated",
    "track_published",
    "track_unpublished",
    "track_muted",
)


def forward_to(target: str) -> Callable[[web.Application], None]:
    """Routes that hand the server API (``/`` and ``/twirp/...``) to the HTTP server at ``target``."""

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        async with (
            ClientSession() as session,
            session.request(
                request.method, target + request.path_qs, data=await request.read(), headers=headers
            ) as answer,
        ):
            body = await answer.read()
            return web.Response(status=answer.status, body=body, headers={"Content-Type": answer.content_type})

    def add(app: web.Application) -> None:
        app.router.add_route("*", "/twirp/{method:.*}", forward)
        app.router.add_get("/", forward)

    return add


class LiveKitServer(Running):
    """The whole LiveKit stand-in on ``host:port`` (0: an ephemeral port). Context manager or start/stop."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.twirp = LiveKitStandIn(api_key, api_secret, host=host, webhook_url=webhook_url)
        self.agents = AgentWorkerStandIn(api_key, api_secret, host=host)
        self.sfu = SFUStandIn(
            api_key, api_secret, host=host, port=port, more_routes=self._add_routes, room_source=self.twirp.get_room
        )
        self.sfu.listeners.append(self._mirror)
        self.twirp.live = self.sfu
        self.twirp.dispatcher = self.dispatch
        self.dispatched: list[Future[DispatchedJob]] = []
        self._webhooks: ThreadPoolExecutor | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LiveKitServer:
        self._webhooks = ThreadPoolExecutor(1, thread_name_prefix="livekit-webhooks")
        self.twirp.start()
        self.sfu.start()
        return self

    def stop(self) -> None:
        self.sfu.stop()
        self.twirp.stop()
        if self._webhooks is not None:
            self._webhooks.shutdown(wait=True)
            self._webhooks = None

    @property
    def url(self) -> str:
        """LIVEKIT_URL for everyone: SDKs (``/rtc``), livekit-api (``/twirp``) and agent workers (``/agent``)."""
        return self.sfu.url

    @property
    def http_url(self) -> str:
        return self.sfu.http_url

    @property
    def port(self) -> int:
        return self.sfu.port

    def token(self, identity: str, room: str, *, kind: str = "", **grants: Any) -> str:
        """A one-hour join token for ``room`` (see ``SFUStandIn.token``)."""
        return self.sfu.token(identity, room, kind=kind, **grants)

    def _add_routes(self, app: web.Application) -> None:
        forward_to(self.twirp.url)(app)
        self.agents.add_routes(app)

    # ---------------------------------------------------------------- SFU -> server API state and webhooks

    def _mirror(self, event: Event) -> None:
        """Runs on the SFU's loop for each of its events: the server API's state follows, webhooks go out."""
        detail = event.detail
        if event.kind == "room_started":
            self.twirp.adopt_room(detail["room"])
        elif event.kind in _PARTICIPANT_CHANGES:
            self.twirp.put_participant(event.room, detail["participant"])
        elif event.kind == "participant_left":
            self.twirp.drop_participant(event.room, detail["participant"])
        elif event.kind == "room_finished":
            self.twirp.drop_room(event.room)
        if event.kind in WEBHOOK_EVENTS and self.twirp.webhook_url and self._webhooks is not None:
            fields = {name: detail[name] for name in ("room", "participant", "track") if name in detail}
            if event.kind == "room_finished":
                fields["room_end_reason"] = self.twirp.room_end_reasons.get(event.room, models.ROOM_END_UNKNOWN)
            self._webhooks.submit(self._send_webhook, event.kind, fields)

    def flush_webhooks(self, timeout: float = 30.0) -> None:
        """Wait until every webhook of the events so far has been posted (they go out one at a time, in order)."""
        assert self._webhooks is not None, "the LiveKit stand-in is not running"
        self._webhooks.submit(lambda: None).result(timeout)

    def _send_webhook(self, kind: str, fields: dict[str, Any]) -> None:
        try:
            self.twirp.send_webhook(None, kind, **fields)
        except requests.RequestException as error:
            log.warning("webhook %s not delivered: %s", kind, error)

    # ---------------------------------------------------------------- server API -> agent workers

    def dispatch(self, dispatch: agent_dispatch.AgentDispatch, room: models.Room) -> object:
        """CreateDispatch: the job offered to a registered worker with that agent name (kept in ``dispatched``)."""
        job = self.agents.dispatch_soon(room, dispatch.metadata, dispatch.agent_name, dispatch.id)
        job.add_done_callback(_log_failure)
        self.dispatched.append(job)
        return job


def _log_failure(job: Future[DispatchedJob]) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.warning("agent dispatch failed: %s", job.exception())
