"""RTSP cameras through PyAV: open, describe tracks, read packets, classify failures.

Failures become :mod:`gateway.errors` source errors whose ``reason`` feeds the camera
status; their messages carry the masked URL only (FFmpeg's own text can echo the URL with
its password, so it is passed through the redactor before it is kept anywhere).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.error

from adapters.source import RawPacket, Track
from gateway import errors
from gateway.hub.packet import Kind
from gateway.netpolicy import NetPolicy, Purpose
from gateway.redact import mask_url, redact

SCHEMES = frozenset({"rtsp", "rtsps"})
# FFmpeg may open only these protocols from a camera URL: no file:, concat:, subfile:, http:
PROTOCOL_WHITELIST = "rtsp,rtsps,rtp,tcp,udp,tls"


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with the credentials in its userinfo, percent-encoded as RTSP wants them."""
    if not username:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


class RtspSource:
    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        transport: str = "tcp",
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        policy: NetPolicy | None = None,
    ) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in SCHEMES:
            raise errors.InvalidInput(f"not an RTSP URL: {mask_url(url)}", field="url")
        self._url = with_credentials(url, username, password)
        redact.add(password)
        if password:  # FFmpeg echoes the URL it was given, where it is percent-encoded
            redact.add(quote(password, safe=""))
        self.display_url = mask_url(url)
        # FFmpeg's own socket timeout (µs) bounds connect, handshake and every read. PyAV's
        # ``timeout=`` argument is not used: its interrupt callback takes the GIL on every
        # FFmpeg I/O poll and doubled the demux CPU per camera (scripts/bench/bench_hub.py).
        self._options = {
            "rtsp_transport": transport,
            "timeout": str(int(max(open_timeout, read_timeout) * 1_000_000)),
            "protocol_whitelist": PROTOCOL_WHITELIST,
        }
        self._open_timeout = open_timeout
        self._policy = policy
        self._container: av.container.InputContainer | None = None
        self._packets: Iterator[av.Packet[Any]] | None = None

    def open(self) -> list[Track]:
        url = self._url
        if self._policy is not None:
            # Resolved and judged now, in this thread, and opened at that very address.
            url = self._policy.pin(url, Purpose.STREAM)
        started = time.monotonic()
        try:
            container = av.open(url, options=self._options)
        except Exception as exc:
            # FFmpeg reports a server that accepts but never answers as InvalidDataError
            # once the timeout fires: only the elapsed time tells it from garbage.
            if time.monotonic() - started >= 0.9 * self._open_timeout:
                raise errors.CameraTimeout(f"{self.display_url}: no answer in time") from None
            raise classify(exc, self.display_url) from None
        self._container = container
        tracks = [_track(s) for s in container.streams if s.type in ("video", "audio")]
        if not tracks:
            self.close()
            raise errors.UnsupportedCodec(f"{self.display_url} offers no video or audio")
        self._packets = container.demux(*[container.streams[t.index] for t in tracks])
        return tracks

    def read(self) -> RawPacket:
        if self._packets is None:
            raise errors.StreamEnded(f"{self.display_url} is not open")
        try:
            packet = next(self._packets)
        except StopIteration:
            raise errors.StreamEnded(f"{self.display_url} ended the stream") from None
        except Exception as exc:
            raise classify(exc, self.display_url) from None
        if packet.size == 0:  # FFmpeg's flush packet: the demuxer reached the end
            raise errors.StreamEnded(f"{self.display_url} ended the stream")
        return RawPacket(
            track=packet.stream.index,
            data=bytes(packet),
            pts=packet.pts,
            dts=packet.dts,
            keyframe=packet.is_keyframe,
        )

    def close(self) -> None:
        container, self._container, self._packets = self._container, None, None
        if container is not None:
            container.close()


def _track(stream: av.stream.Stream) -> Track:
    ctx = stream.codec_context
    kind: Kind = "video" if stream.type == "video" else "audio"
    rate = (stream.average_rate or stream.guessed_rate) if kind == "video" else None
    return Track(
        index=stream.index,
        kind=kind,
        codec=ctx.name,
        time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000),
        extradata=bytes(ctx.extradata or b""),
        width=getattr(ctx, "width", 0) or 0,
        height=getattr(ctx, "height", 0) or 0,
        fps=float(rate) if rate else 0.0,
        profile=ctx.profile,
        has_b_frames=bool(getattr(ctx, "has_b_frames", 0)),
        sample_rate=getattr(ctx, "sample_rate", 0) or 0,
        channels=getattr(ctx, "channels", 0) or 0,
    )


def classify(exc: BaseException, display_url: str) -> errors.SourceError:
    """Map a PyAV/FFmpeg failure to the status vocabulary, with a secret-free message."""
    detail = redact(str(getattr(exc, "strerror", None) or exc))
    where = display_url
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return errors.CameraAuthFailed(f"{where}: the camera refused the credentials")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return errors.CameraNotFound(f"{where}: no such stream on the camera")
    if isinstance(exc, av.error.ExitError | TimeoutError):
        return errors.CameraTimeout(f"{where}: no answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return errors.CameraRefused(f"{where}: connection refused")
    if isinstance(exc, av.error.EOFError | EOFError):
        return errors.StreamEnded(f"{where}: the camera closed the stream")
    code = getattr(exc, "errno", None)
    if code in (errno.ETIMEDOUT, errno.EAGAIN):
        return errors.CameraTimeout(f"{where}: no answer in time")
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN):
        return errors.CameraUnreachable(f"{where}: host unreachable")
    if code == errno.EPERM:
        # FFmpeg's answer to an RTSP error status it has no name for (e.g. 503 from a camera
        # whose encoder is not ready, 454 session not found).
        return errors.SourceError(f"{where}: the camera answered the request with an error")
    if code == errno.ECONNRESET or code == errno.EPIPE:
        return errors.StreamEnded(f"{where}: the connection was reset")
    if code == errno.EIO and "resolve" in detail.lower():
        return errors.CameraUnreachable(f"{where}: host name not found")
    if isinstance(exc, av.error.InvalidDataError):
        return errors.SourceError(f"{where}: the camera sent data that is not a stream ({detail})")
    return errors.SourceError(f"{where}: {detail}")
