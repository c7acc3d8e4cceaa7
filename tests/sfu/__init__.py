"""A LiveKit server stand-in with real WebRTC (aiortc), for tests: what clients, the platform and the agent talk to.

``LiveKitServer`` (livekit_server.py) is the whole server on one port and one room state, as
``python -m tests.sfu`` serves it: the SFU's ``/rtc`` signalling, media and data (server.py, state.py, media.py), the
server API over Twirp (tests/support/livekit_standin.py), the agent-worker endpoint ``/agent``
(tests/support/livekit_agent_standin.py) and signed webhooks. ``SFUStandIn`` alone is ``/rtc`` without the rest.

Where it differs from a real livekit-server, as a reader of the tests should know:

* Signalling: only the two-connection ``/rtc`` protocol (``/rtc/v1``, the single peer connection, is a 404 and the
  SDKs fall back); no resume (a ``reconnect=1`` join is a fresh join); no ping-timeout enforcement; no ICE restart,
  ICE-lite or server-side trickle; every connection offers one 127.0.0.1 host candidate (aioice's address lookup is
  patched for the whole process). ServerInfo says version 1.9.0, protocol 16.
* Media: audio is decoded and re-encoded for each subscriber (Opus 48 kHz stereo; RTP timestamps are not the
  publisher's; no RED or DTX pass-through); no simulcast, video layers, adaptive stream or dynacast; video is untested.
  A track missing from the publisher's next offer is unpublished.
* Not sent: SpeakersChanged, ConnectionQuality, StreamStateUpdate, SubscribedQualityUpdate, TrackSubscribed,
  RefreshToken. Track-level subscription permissions, data tracks and E2EE are not supported; packets for a subscriber
  data channel that closed are queued, not dropped. Hidden participants and their tracks are never announced.
  A client's UpdateMetadata needs canUpdateOwnMetadata.
* Rooms: created by the first join (or CreateRoom, or CreateDispatch, as livekit-server with room.auto_create) and
  finished as soon as the last participant leaves: no empty or departure timeout, no max participants over ``/rtc``.
  A room created over the server API that nobody joins stays until DeleteRoom (``end_room`` in tests).
* Server API: served by a forwarder to ``LiveKitStandIn`` (its Twirp handling, grants and errors are documented
  there); calls that act on live participants (RemoveParticipant, MutePublishedTrack, UpdateParticipant, SendData,
  DeleteRoom) return before the participants are told. Remote unmute is refused as in the default config.
  UpdateParticipant's new permission is stored and announced, but subscriptions already made are not revoked.
* Webhooks: room_started, room_finished, participant_joined (when the join is answered, not when the participant
  is active), participant_left, track_published and track_unpublished, from the live rooms only, one at a time,
  never retried; a room created over the server API sends no room_started until someone joins it.
* Agents: one node, so a dispatch goes to the first registered, available worker with that agent name (no load
  balancing, no retry on another worker, no dispatch when a room is created with ``agents`` in its configuration).
"""

from tests.sfu.livekit_server import LiveKitServer
from tests.sfu.server import Event, SFUStandIn

__all__ = ["Event", "LiveKitServer", "SFUStandIn"]
