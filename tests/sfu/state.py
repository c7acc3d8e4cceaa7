"""Rooms, participants and published tracks of the SFU stand-in, with the protobuf views clients are sent."""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCDataChannel, RTCIceCandidate, RTCPeerConnection, RTCRtpTransceiver
from livekit import api
from livekit.protocol import models, rtc

from tests.sfu.media import FanOut, ForwardedTrack

_ID_ALPHABET = string.ascii_letters + string.digits
RELIABLE = "_reliable"
LOSSY = "_lossy"


def guid(prefix: str) -> str:
    """An id shaped like livekit-server's (``RM_``, ``PA_``, ``TR_`` + 12 characters)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def permission(grants: api.VideoGrants) -> models.ParticipantPermission:
    """The ParticipantPermission livekit-server derives from a token's video grant."""
    return models.ParticipantPermission(
        can_subscribe=grants.can_subscribe,
        can_publish=grants.can_publish,
        can_publish_data=grants.can_publish_data,
        can_publish_sources=[_SOURCES[s] for s in grants.can_publish_sources or [] if s in _SOURCES],
        hidden=bool(grants.hidden),
        recorder=bool(grants.recorder),
        can_update_metadata=bool(grants.can_update_own_metadata),
        agent=bool(grants.agent),
        can_subscribe_metrics=bool(grants.can_subscribe_metrics),
    )


_SOURCES = {
    "camera": models.TrackSource.CAMERA,
    "microphone": models.TrackSource.MICROPHONE,
    "screen_share": models.TrackSource.SCREEN_SHARE,
    "screen_share_audio": models.TrackSource.SCREEN_SHARE_AUDIO,
}
_KINDS = {
    "agent": models.ParticipantInfo.AGENT,
    "ingress": models.ParticipantInfo.INGRESS,
    "egress": models.ParticipantInfo.EGRESS,
    "sip": models.ParticipantInfo.SIP,
}


def participant_kind(kind: str) -> models.ParticipantInfo.Kind.ValueType:
    return _KINDS.get(kind, models.ParticipantInfo.STANDARD)


@dataclass
class PublishedTrack:
    """A track a participant asked to publish (AddTrackRequest), its media once it arrived, and who receives it."""

    cid: str
    info: models.TrackInfo
    publisher: Participant
    fan_out: FanOut | None = None  # once media arrived
    pump: asyncio.Task[None] | None = None

    @property
    def sid(self) -> str:
        return self.info.sid


@dataclass
class Subscription:
    """One published track sent down one subscriber peer connection."""

    track: PublishedTrack
    transceiver: RTCRtpTransceiver
    copy: ForwardedTrack


@dataclass
class Participant:
    """One signalling WebSocket: the participant, its two peer connections and its data channels."""

    info: models.ParticipantInfo  # its permission holds the token's grants
    room: Room
    ws: web.WebSocketResponse
    publisher: RTCPeerConnection
    subscriber: RTCPeerConnection
    auto_subscribe: bool = True
    offered: dict[str, str] = field(default_factory=dict)  # mid -> track id the publisher sends, last offer
    pending_tracks: dict[str, PublishedTrack] = field(default_factory=dict)  # by cid, until media arrives
    tracks: dict[str, PublishedTrack] = field(default_factory=dict)  # by sid
    subscriptions: dict[str, Subscription] = field(default_factory=dict)  # by track sid
    deferred: list[PublishedTrack] = field(default_factory=list)  # until the subscriber connection is up
    channels: dict[str, RTCDataChannel] = field(default_factory=dict)  # subscriber side, by label
    unsent: dict[str, list[bytes]] = field(default_factory=dict)  # data waiting for a channel to open
    early_candidates: dict[int, list[RTCIceCandidate]] = field(default_factory=dict)  # by SignalTarget
    answer: asyncio.Future[rtc.SessionDescription] | None = None
    renegotiate: bool = False
    negotiating: asyncio.Task[None] | None = None
    gone: bool = False

    @property
    def sid(self) -> str:
        return self.info.sid

    @property
    def identity(self) -> str:
        return self.info.identity

    @property
    def hidden(self) -> bool:
        return self.info.permission.hidden

    def view(self) -> models.ParticipantInfo:
        """A copy of the ParticipantInfo others are sent, with the tracks published now."""
        copy = models.ParticipantInfo()
        copy.CopyFrom(self.info)
        del copy.tracks[:]
        copy.tracks.extend(t.info for t in self.tracks.values())
        copy.is_publisher = bool(self.tracks)
        return copy


@dataclass
class Room:
    info: models.Room
    participants: dict[str, Participant] = field(default_factory=dict)  # by identity

    @classmethod
    def create(cls, name: str) -> Room:
        now = time.time()
        return cls(models.Room(sid=guid("RM_"), name=name, creation_time=int(now), creation_time_ms=int(now * 1000)))

    def others(self, participant: Participant) -> list[Participant]:
        return [p for p in self.participants.values() if p is not participant and not p.gone]

    def view(self) -> models.Room:
        self.info.num_participants = sum(1 for p in self.participants.values() if not p.hidden)
        self.info.num_publishers = sum(1 for p in self.participants.values() if p.tracks)
        return self.info
