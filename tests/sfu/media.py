"""The aiortc side of the SFU stand-in: loopback-only peer connections, candidates and SDP facts.

Everything here keeps WebRTC on this machine: no STUN/TURN server is ever configured, and aioice gathers a
single host candidate on 127.0.0.1 (it skips loopback by default, so its address lookup is replaced for the
process that runs the stand-in).
"""

from __future__ import annotations

import asyncio
import json
import re

import aioice.ice
from aiortc import MediaStreamTrack, RTCBundlePolicy, RTCConfiguration, RTCIceCandidate, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av.frame import Frame

LOOPBACK = "127.0.0.1"


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's host-address lookup, restricted to loopback: the only address the stand-in's ICE offers."""
    return [LOOPBACK] if use_ipv4 else []


def keep_ice_on_loopback() -> None:
    """Make every aiortc peer connection in this process gather one 127.0.0.1 host candidate and nothing else."""
    aioice.ice.get_host_addresses = _loopback_addresses


def peer_connection() -> RTCPeerConnection:
    """A peer connection with no ICE servers (aiortc would otherwise add a public STUN server) and max-bundle."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


def parse_candidate(candidate_init: str) -> RTCIceCandidate | None:
    """A trickled ``RTCIceCandidateInit`` (JSON, as the SDKs send it) as aiortc's candidate; None for end-of-candidates
    and for candidates aioice cannot use (TCP)."""
    init = json.loads(candidate_init)
    line = init.get("candidate") or ""
    if not line:
        return None
    candidate = candidate_from_sdp(line.split(":", 1)[1] if line.startswith("candidate:") else line)
    if candidate.protocol.lower() != "udp":
        return None
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    return candidate


def sending_tracks(sdp: str) -> dict[str, str]:
    """mid -> MediaStreamTrack id (``a=msid`` track part) of every m-section the offerer sends on.

    The SDKs' msid stream id is ``-`` with no WMS group, so aiortc cannot name the remote tracks: the stand-in
    matches media to AddTrackRequest cids through the mid instead.
    """
    tracks: dict[str, str] = {}
    for section in re.split(r"\r?\nm=", sdp)[1:]:
        if section.startswith("application") or re.match(r"\S+ 0 ", section):
            continue
        direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", section, re.M)
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        msid = re.search(r"^a=msid:\S+ (\S+)\s*$", section, re.M)
        if mid and msid and (direction is None or direction.group(1) in ("sendrecv", "sendonly")):
            tracks[mid.group(1)] = msid.group(1)
    return tracks


class FanOut:
    """Reads one received track and hands each frame to every forwarded copy: the stand-in's "SFU" for media.

    aiortc's MediaRelay would do, but its reader task belongs to nobody once a track is unpublished while its
    connection stays up; this one is a task the stand-in owns and cancels.
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        self.source = source
        self.copies: set[ForwardedTrack] = set()

    def copy(self) -> ForwardedTrack:
        forwarded = ForwardedTrack(self)
        self.copies.add(forwarded)
        return forwarded

    async def run(self) -> None:
        """Forward frames until the source ends or the task is cancelled, then end every copy."""
        try:
            while True:
                try:
                    frame = await self.source.recv()
                except MediaStreamError:
                    return
                for forwarded in list(self.copies):
                    forwarded.queue.put_nowait(frame)
        finally:
            for forwarded in list(self.copies):
                forwarded.queue.put_nowait(None)


class ForwardedTrack(MediaStreamTrack):
    """One subscriber's copy of a published track; the subscriber connection's sender encodes it afresh."""

    def __init__(self, fan_out: FanOut) -> None:
        super().__init__()
        self.kind = fan_out.source.kind
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._fan_out = fan_out

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        super().stop()
        self._fan_out.copies.discard(self)
