"""The per-viewer RTP send loop, made lean for pass-through.

Profiled at 20 viewers (1080p, 4 Mb/s), aiortc's own loop spends most of its time per
packet and per viewer outside the two things that must happen per viewer (SRTP and the
UDP send): an ``RtpPacket`` object, header extensions serialised from scratch, two clock
conversions, H.264 packetisation, and a chain of four coroutine calls down to
``sendto``. Here, instead:

- the H.264 payloads of an access unit are made once per camera stream (:class:`Packetizer`)
  and shared by all its viewers;
- the header extensions (MID, abs-send-time) are serialised once per access unit;
- each packet is one ``struct.pack`` of its 12-byte header, SRTP ``protect`` and the socket's
  ``sendto`` on the nominated ICE pair (TURN pairs keep aioice's own ``send_data``).

This replaces two methods of aiortc 1.16's ``RTCRtpSender`` on the sender instance (its
RTP loop and its NACK handler) and keeps the sender's RTCP state (packet and octet counts,
the last RTP/NTP timestamps for sender reports) as aiortc does, so RTCP, ``getStats`` and
``stop()`` behave the same. The names of aiortc's private attributes are gathered here and
checked at start (:func:`check_aiortc`), so an aiortc upgrade that moves them fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import OrderedDict
from types import MethodType
from typing import Any

from aioice.ice import StunProtocol
from aiortc import RTCRtpSender, clock
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import HeaderExtensions
from aiortc.utils import random32

from gateway.hub.packet import Packet
from gateway.relay.track import PassThroughTrack

log = logging.getLogger(__name__)

HISTORY = 512  # packets kept per viewer for NACK retransmission (aiortc keeps 128)
COMPONENT = 1
_HEADER = struct.Struct("!BBHLL")
_EXTENSION_HEADER = struct.Struct("!HH")
_P = "_RTCRtpSender__"  # aiortc's name-mangled private attributes
_ATTRIBUTES = (
    "rtp_started",
    "rtp_exited",
    "mid",
    "rtp_header_extensions_map",
    "rtx_payload_type",
    "rtx_sequence_number",
    "ntp_timestamp",
    "rtp_timestamp",
    "octet_count",
    "packet_count",
    "track",
)


def check_aiortc() -> None:
    """Fail at start-up, not per viewer, if aiortc no longer has what this module uses."""
    probe = (
        RTCRtpSender.__init__.__code__.co_names
        + RTCRtpSender.send.__code__.co_names
        + RTCRtpSender.replaceTrack.__code__.co_names
    )
    missing = [a for a in _ATTRIBUTES if _P + a not in probe]
    if missing or not hasattr(H264Encoder, "_packetize"):
        raise RuntimeError(f"unsupported aiortc version: RTCRtpSender lacks {missing}")


class Packetizer:
    """RTP payloads of each access unit of one camera stream, shared by its viewers.

    Viewers read the same packets within milliseconds of each other, except one replaying
    the cached GOP; a miss only costs that viewer its own packetisation.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()

    def payloads(self, packet: Packet) -> list[bytes]:
        found = self._cache.get(packet.seq)
        if found is not None:
            return found
        payloads = H264Encoder._packetize(H264Encoder._split_bitstream(packet.data))
        self._cache[packet.seq] = payloads
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return payloads


def install(sender: RTCRtpSender, track: PassThroughTrack, packetizer: Packetizer) -> None:
    """Make ``sender`` (not yet started) send ``track`` with the lean loop."""
    history: list[tuple[int, bytes, int] | None] = [None] * HISTORY
    sender._run_rtp = MethodType(  # type: ignore[method-assign]
        lambda self, codec: _run_rtp(self, codec, track, packetizer, history), sender
    )
    sender._retransmit = MethodType(  # type: ignore[method-assign]
        lambda self, seq: _retransmit(self, seq, history), sender
    )


async def _run_rtp(
    sender: RTCRtpSender,
    codec: RTCRtpCodecParameters,
    track: PassThroughTrack,
    packetizer: Packetizer,
    history: list[tuple[int, bytes, int] | None],
) -> None:
    s: Any = sender
    getattr(s, _P + "rtp_started").set()
    dtls = sender.transport
    ice = dtls.transport._connection
    extensions_map = getattr(s, _P + "rtp_header_extensions_map")
    mid = getattr(s, _P + "mid")
    payload_type, ssrc = codec.payloadType or 0, sender._ssrc
    sequence = random_sequence_number()
    origin = random32()
    octets = packets = 0
    try:
        while True:
            packet, offset = await track.next_unit()
            payloads = packetizer.payloads(packet)
            timestamp = (origin + offset) & 0xFFFFFFFF
            ntp = clock.current_ntp_time()
            extensions = HeaderExtensions()
            extensions.mid = mid
            extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
            profile, value = extensions_map.set(extensions)
            extension = _EXTENSION_HEADER.pack(profile, len(value) >> 2) + value if value else b""
            first = 0x90 if value else 0x80
            header_size = 12 + len(extension)
            if dtls._state != DtlsState.CONNECTED:
                raise ConnectionError("DTLS is not connected")
            pair = ice._nominated.get(COMPONENT)
            if pair is None:
                raise ConnectionError("ICE has no nominated pair")
            protocol, address = pair.protocol, pair.remote_addr
            direct = protocol.transport.sendto if type(protocol) is StunProtocol else None
            protect = dtls._tx_srtp.protect
            last = len(payloads) - 1
            for i, payload in enumerate(payloads):
                marker = 0x80 if i == last else 0
                data = _HEADER.pack(first, marker | payload_type, sequence, timestamp, ssrc)
                data += extension + payload
                history[sequence % HISTORY] = (sequence, data, header_size)
                if direct is not None:
                    direct(protect(data), address)
                else:
                    await protocol.send_data(protect(data), address)
                sequence = (sequence + 1) & 0xFFFF
                octets += len(payload)
            packets += len(payloads)
            # What aiortc's RTCP loop reads for its sender reports.
            setattr(s, _P + "ntp_timestamp", ntp)
            setattr(s, _P + "rtp_timestamp", timestamp)
            setattr(s, _P + "octet_count", octets)
            setattr(s, _P + "packet_count", packets)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:  # as aiortc: the exited event must be set, or stop() hangs
        log.exception("RTP send loop failed")
    track.stop()
    setattr(s, _P + "track", None)
    getattr(s, _P + "rtp_exited").set()


async def _retransmit(
    sender: RTCRtpSender, sequence: int, history: list[tuple[int, bytes, int] | None]
) -> None:
    """Resend a packet the viewer reported lost (RFC 4585 NACK), as RTX when negotiated."""
    s: Any = sender
    entry = history[sequence % HISTORY]
    if entry is None or entry[0] != sequence:
        return  # too old
    _, data, header_size = entry
    rtx_type = getattr(s, _P + "rtx_payload_type")
    if rtx_type is not None:  # RFC 4588: own SSRC and sequence, original sequence first
        rtx_sequence = getattr(s, _P + "rtx_sequence_number")
        setattr(s, _P + "rtx_sequence_number", (rtx_sequence + 1) & 0xFFFF)
        header = bytearray(data[:header_size])
        header[1] = (header[1] & 0x80) | rtx_type
        struct.pack_into("!H", header, 2, rtx_sequence)
        struct.pack_into("!L", header, 8, sender._rtx_ssrc)
        data = bytes(header) + struct.pack("!H", sequence) + data[header_size:]
    await sender.transport._send_rtp(data)
