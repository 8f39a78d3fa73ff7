"""WHEP sessions (RFC 9725): one aiortc peer connection per viewer, H.264 passed through.

A session is created from the viewer's SDP offer: the offer is checked (an H.264 payload
with packetization-mode 1), the camera's stream is checked (a browser plays neither H.265 nor
B-frames in WebRTC), the viewer limits are applied, and the answer pins the camera's H.264
profile. Sessions end by ``DELETE`` or are reaped when ICE or DTLS fails, consent expires,
the connection never completes, or the camera is removed; reaped sessions are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc import codecs as aiortc_codecs
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import H264Profile, SessionDescription, parse_h264_profile_level_id

from gateway import errors
from gateway.hub.packet import CodecParams, Packet
from gateway.hub.status import State
from gateway.hub.stream import CameraStream
from gateway.relay import ice, sender
from gateway.relay.track import PassThroughTrack
from gateway.settings import RelaySettings

log = logging.getLogger(__name__)

# The hub's profile names (gateway.codecs.h264) → the SDP profile a browser negotiates.
SDP_PROFILES = {
    "Constrained Baseline": H264Profile.PROFILE_CONSTRAINED_BASELINE,
    "Baseline": H264Profile.PROFILE_BASELINE,
    "Main": H264Profile.PROFILE_MAIN,
    "High": H264Profile.PROFILE_HIGH,
}
# aiortc knows only the two baseline profiles; Main and High cameras (without B-frames)
# are common and every browser decodes them, so the relay teaches aiortc these two.
EXTRA_PROFILE_LEVEL_IDS = ("4d001f", "64001f")


class SdpError(errors.InvalidInput):
    code = "invalid_sdp"
    status = 400


class UnsupportedMediaType(errors.InvalidInput):
    code = "unsupported_media_type"
    status = 415


class OfferNotAcceptable(errors.InvalidInput):
    """A valid offer the relay cannot answer: no H.264 video it could send."""

    code = "offer_not_acceptable"


class NotPlayable(errors.InvalidInput):
    """The camera's stream is one a browser cannot play over WebRTC."""

    code = "stream_not_playable"


class CameraOffline(errors.SourceError):
    code = "camera_offline"
    status = 503


@dataclass(eq=False)
class WhepSession:
    id: str
    camera_id: str
    stream: str
    pc: RTCPeerConnection | None = None
    track: PassThroughTrack | None = None
    created: float = field(default_factory=time.monotonic)
    connected: float | None = None
    closed: bool = False


class Relay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self._ice_servers = ice.ice_servers(settings.ice)  # a bad URL fails at start-up
        self._sessions: dict[str, WhepSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.opened = 0  # sessions answered, all time
        self.ended: Counter[str] = Counter()  # sessions gone, by why
        self.refused: Counter[str] = Counter()  # offers refused, by error code
        _register_h264_profiles()
        sender.check_aiortc()
        ice.check_aioice()
        self._packetizers: dict[tuple[str, str], sender.Packetizer] = {}

    # --- queries --------------------------------------------------------------------

    def sessions(self, camera_id: str | None = None) -> list[WhepSession]:
        return [s for s in self._sessions.values() if camera_id in (None, s.camera_id)]

    def get(self, camera_id: str, session_id: str) -> WhepSession:
        session = self._sessions.get(session_id)
        if session is None or session.camera_id != camera_id:
            raise errors.NotFound(f"no WHEP session {session_id} on camera {camera_id}")
        return session

    def stats(self) -> dict[str, object]:
        return {
            "sessions": len(self._sessions),
            "connected": sum(1 for s in self._sessions.values() if s.connected is not None),
            "opened_total": self.opened,
            "ended_total": dict(self.ended),
            "refused_total": dict(self.refused),
            "max_viewers": self.settings.max_viewers,
            "max_viewers_per_camera": self.settings.max_viewers_per_camera,
        }

    # --- life cycle -----------------------------------------------------------------

    async def open(
        self,
        camera_id: str,
        stream_name: str,
        stream: CameraStream,
        offer: str,
        *,
        has_sub_stream: bool,
    ) -> tuple[WhepSession, str]:
        """A new session and its SDP answer; raises a :class:`GatewayError` with the cause."""
        try:
            return await self._open(camera_id, stream_name, stream, offer, has_sub_stream)
        except errors.GatewayError as exc:
            self.refused[exc.code] += 1
            raise

    async def _open(
        self,
        camera_id: str,
        stream_name: str,
        stream: CameraStream,
        offer: str,
        has_sub_stream: bool,
    ) -> tuple[WhepSession, str]:
        check_offer(offer)
        self._check_limits(camera_id)
        if stream.running and stream.status.state == State.OFFLINE:
            s = stream.status
            raise CameraOffline(
                f"camera {camera_id} is offline ({s.reason.value}: {s.message});"
                " the gateway keeps retrying"
            )
        # Registered before the first await, so concurrent offers count against the limits.
        # The id is the session's Location, which is all a DELETE needs: unguessable, and
        # logged only in part.
        session = WhepSession(secrets.token_urlsafe(18), camera_id, stream_name)
        self._sessions[session.id] = session
        try:
            answer = await self._negotiate(session, stream, offer, has_sub_stream)
        except BaseException:
            await self._end(session, "")
            raise
        self.opened += 1
        watchdog = asyncio.get_running_loop().call_later(
            self.settings.connect_timeout, self._never_connected, session
        )
        assert session.pc is not None and session.track is not None
        session.pc.on("connectionstatechange", lambda: self._state_changed(session, watchdog))
        session.track.on("ended", lambda: self._track_ended(session))
        log.info(
            "WHEP session %s… opened on camera %s (%s stream)",
            session.id[:6],
            camera_id,
            stream_name,
        )
        return session, answer

    async def _negotiate(
        self, session: WhepSession, stream: CameraStream, offer: str, has_sub_stream: bool
    ) -> str:
        # Room for the whole cached GOP plus live packets until ICE and DTLS are up: a
        # smaller queue would overflow and skip to the next keyframe, losing the fast start.
        room = stream.config.gop_max_packets + stream.config.queue_packets
        subscriber = stream.subscribe(f"whep {session.id[:6]}", max_packets=room)
        session.track = PassThroughTrack(subscriber, catchup_speed=self.settings.catchup_speed)
        keyframe = await self._first_keyframe(session.camera_id, stream)
        check_playable(keyframe, stream, session.stream, has_sub_stream)
        pc = session.pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        transceiver = pc.addTransceiver(session.track, direction="sendonly")
        key = (session.camera_id, session.stream)
        packetizer = self._packetizers.setdefault(key, sender.Packetizer())
        sender.install(transceiver.sender, session.track, packetizer)
        transceiver.setCodecPreferences(h264_preferences(keyframe.codec))
        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(
                    sdp=ice.reachable_candidates(offer, self.settings.ice), type="offer"
                )
            )
        except (ValueError, LookupError, TypeError) as exc:
            raise SdpError(f"the offer cannot be applied: {exc}") from None
        except Exception as exc:  # aiortc's OperationError/InvalidStateError: same meaning
            raise OfferNotAcceptable(f"the offer cannot be answered: {exc}") from None
        if transceiver.mid is None or not transceiver._codecs:
            raise OfferNotAcceptable("the offer has no video section the gateway can send to")
        await ice.gather(pc, self.settings.ice)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def _first_keyframe(self, camera_id: str, stream: CameraStream) -> Packet:
        """The keyframe the viewer starts from. The hub fails the wait as soon as the pull
        fails (with the reason), or at the timeout."""
        try:
            return await stream.next_keyframe(self.settings.start_timeout)
        except errors.SourceError as exc:
            raise CameraOffline(
                f"camera {camera_id} is not available ({exc.reason}): {exc.message}"
            ) from None

    async def close_session(self, camera_id: str, session_id: str) -> None:
        """The viewer's ``DELETE``."""
        await self._end(self.get(camera_id, session_id), "deleted")

    async def close(self) -> None:
        await asyncio.gather(*(self._end(s, "shutdown") for s in list(self._sessions.values())))
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _end(self, session: WhepSession, why: str) -> None:
        """Close ``session``; ``why`` is counted (empty: a refused offer, counted there)."""
        if session.closed:
            return
        session.closed = True
        self._sessions.pop(session.id, None)
        if why:
            self.ended[why] += 1
            lived = time.monotonic() - session.created
            log.info(
                "WHEP session %s… on camera %s ended (%s) after %.0f s",
                session.id[:6],
                session.camera_id,
                why,
                lived,
            )
        if not any(
            (s.camera_id, s.stream) == (session.camera_id, session.stream)
            for s in self._sessions.values()
        ):
            self._packetizers.pop((session.camera_id, session.stream), None)
        if session.track is not None:
            session.track.stop()  # frees the hub subscriber even if aiortc never started
        if session.pc is not None:
            await session.pc.close()

    def _reap(self, session: WhepSession, why: str) -> None:
        if session.closed:
            return
        task = asyncio.get_running_loop().create_task(self._end(session, why))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _state_changed(self, session: WhepSession, watchdog: asyncio.TimerHandle) -> None:
        pc = session.pc
        if pc is None:
            return
        state = pc.connectionState
        if state == "connected" and session.connected is None:
            session.connected = time.monotonic()
            watchdog.cancel()
        elif state in ("failed", "closed"):
            watchdog.cancel()
            # ICE failure and consent expiry both end as "failed"; "closed" by the client
            # side is a DTLS close_notify (the viewer went away without DELETE).
            self._reap(session, "connection_failed" if state == "failed" else "client_closed")

    def _track_ended(self, session: WhepSession) -> None:
        # aiortc also stops the track when sending fails; the connection state tells that.
        if session.track is not None and session.track.source_ended:
            self._reap(session, "stream_ended")

    def _never_connected(self, session: WhepSession) -> None:
        if session.connected is None:
            self._reap(session, "connect_timeout")

    def _check_limits(self, camera_id: str) -> None:
        settings = self.settings
        if len(self._sessions) >= settings.max_viewers:
            raise errors.Overloaded(
                f"this gateway serves its maximum of {settings.max_viewers} live viewers; "
                "try again later or use another node"
            )
        if sum(1 for s in self._sessions.values() if s.camera_id == camera_id) >= (
            settings.max_viewers_per_camera
        ):
            raise errors.Overloaded(
                f"camera {camera_id} has its maximum of {settings.max_viewers_per_camera} live "
                "viewers; try again later"
            )


# --- offers, codecs -------------------------------------------------------------------


def check_offer(offer: str) -> None:
    """Raise unless ``offer`` is SDP with a video section offering H.264 (mode 1) to receive."""
    if not offer.lstrip().startswith("v=0"):
        raise SdpError("the body is not an SDP offer (it must start with v=0)")
    try:
        description = SessionDescription.parse(offer)
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise SdpError(f"the SDP offer does not parse: {exc}") from None
    video = [m for m in description.media if m.kind == "video"]
    if not video:
        raise OfferNotAcceptable("the offer has no video section (m=video)")
    media = video[0]
    if media.direction not in (None, "recvonly", "sendrecv"):
        raise OfferNotAcceptable(
            f"the offer's video section is {media.direction}: a WHEP viewer must receive"
        )
    h264 = [c for c in media.rtp.codecs if c.mimeType.lower() == "video/h264"]
    if not h264:
        offered = ", ".join(sorted({c.name for c in media.rtp.codecs})) or "none"
        raise OfferNotAcceptable(
            f"the offer has no H.264 (offered: {offered}); the gateway passes the camera's "
            "H.264 through without transcoding"
        )
    if not any(str(c.parameters.get("packetization-mode", "0")) == "1" for c in h264):
        raise OfferNotAcceptable("the offer's H.264 lacks packetization-mode=1")


def check_playable(keyframe: Packet, stream: CameraStream, name: str, has_sub: bool) -> None:
    codec = keyframe.codec
    other = "the sub stream (?stream=sub), or " if name == "main" and has_sub else ""
    if codec.name != "h264":
        raise NotPlayable(
            f"the camera's {name} stream is {codec.name.upper()}, which browsers cannot play "
            f"over WebRTC: use {other}set the camera's encoder to H.264 (baseline profile)",
            field="stream",
        )
    b_frames = codec.has_b_frames or stream.status.has_b_frames or keyframe.pts != keyframe.dts
    if b_frames:
        raise NotPlayable(
            f"the camera's {name} stream has B-frames ({codec.profile or 'H.264'}), which "
            f"browsers drop in WebRTC: use {other}set the camera's encoder to the baseline "
            "profile (or disable B-frames)",
            field="stream",
        )
    if codec.profile is not None and codec.profile not in SDP_PROFILES:
        raise NotPlayable(
            f"the camera's {name} stream is H.264 {codec.profile}, which browsers cannot play: "
            f"use {other}set the camera's encoder to the baseline, main or high profile",
            field="stream",
        )


def h264_preferences(codec: CodecParams) -> list[RTCRtpCodecCapability]:
    """H.264 (mode 1) capabilities, the camera's own profile first (aiortc sends the first
    one the offer also has, so the answer pins the camera's profile when the viewer can),
    and RTX, so that retransmissions of lost packets travel apart from the media (RFC 4588)."""
    wanted = SDP_PROFILES.get(codec.profile or "", H264Profile.PROFILE_CONSTRAINED_BASELINE)
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    h264 = [
        c
        for c in capabilities
        if c.mimeType.lower() == "video/h264" and c.parameters.get("packetization-mode") == "1"
    ]
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]

    def rank(capability: RTCRtpCodecCapability) -> int:
        profile, _ = parse_h264_profile_level_id(str(capability.parameters["profile-level-id"]))
        return 0 if profile is wanted else 1

    return sorted(h264, key=rank) + rtx


def _register_h264_profiles() -> None:
    video = aiortc_codecs.CODECS["video"]
    known = {c.parameters.get("profile-level-id") for c in video}
    payload_type = max(c.payloadType or 0 for c in video) + 1
    for profile_level_id in EXTRA_PROFILE_LEVEL_IDS:
        if profile_level_id in known:
            continue
        video += [
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=payload_type,
                rtcpFeedback=[
                    RTCRtcpFeedback(type="nack"),
                    RTCRtcpFeedback(type="nack", parameter="pli"),
                    RTCRtcpFeedback(type="goog-remb"),
                ],
                parameters={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": profile_level_id,
                },
            ),
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=90000,
                payloadType=payload_type + 1,
                parameters={"apt": payload_type},
            ),
        ]
        payload_type += 2
