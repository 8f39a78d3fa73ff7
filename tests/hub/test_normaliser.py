"""Normalisation: Annex-B with parameter sets before every IDR, monotonic timestamps."""

from __future__ import annotations

from fractions import Fraction

import pytest

from adapters.source import RawPacket, Track
from gateway.codecs import annexb, h264
from gateway.errors import UnsupportedCodec
from gateway.hub.normaliser import Normaliser

# A real 640x360 Constrained Baseline SPS and PPS (from x264), Annex-B.
SPS = bytes.fromhex("6742c01eda0280bfe5c05a83030352800000030080000019478b1750")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x33])
P_SLICE = bytes([0x41, 0x9A, 0x02, 0x04])
TB = Fraction(1, 90000)


def track(extradata: bytes = b"", codec: str = "h264") -> Track:
    return Track(
        index=0,
        kind="video",
        codec=codec,
        time_base=TB,
        extradata=extradata,
        width=640,
        height=360,
        fps=25.0,
    )


def raw(nals: list[bytes], pts: int | None, keyframe: bool = False) -> RawPacket:
    return RawPacket(track=0, data=annexb.join_nals(nals), pts=pts, dts=pts, keyframe=keyframe)


def test_sps_parse_reads_resolution_and_profile() -> None:
    info = h264.parse_sps(SPS)
    assert (info.width, info.height) == (640, 360)
    assert info.profile == "Constrained Baseline"
    assert info.profile_level_id == "42c01e"


def test_parameter_sets_inserted_before_idr_without_them() -> None:
    n = Normaliser()
    n.start([track(annexb.join_nals([SPS, PPS]))])
    out = n.push(raw([IDR], 0, keyframe=True), 100.0)
    assert out is not None and out.keyframe
    assert [h264.nal_type(x) for x in annexb.split_nals(out.data)] == [7, 8, 5]
    p = n.push(raw([P_SLICE], 3600), 100.04)
    assert p is not None and [h264.nal_type(x) for x in annexb.split_nals(p.data)] == [1]


def test_avcc_source_converted_to_annexb() -> None:
    avcc = bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1]) + len(SPS).to_bytes(2, "big") + SPS
    avcc += bytes([1]) + len(PPS).to_bytes(2, "big") + PPS
    n = Normaliser()
    n.start([track(avcc)])
    sample = len(IDR).to_bytes(4, "big") + IDR
    out = n.push(RawPacket(track=0, data=sample, pts=0, dts=0, keyframe=True), 1.0)
    assert out is not None
    assert annexb.split_nals(out.data) == [SPS, PPS, IDR]
    assert out.codec.width == 640


def test_in_band_sps_change_makes_new_codec_params() -> None:
    n = Normaliser()
    n.start([track()])
    first = n.push(raw([SPS, PPS, IDR], 0, keyframe=True), 1.0)
    same = n.push(raw([SPS, PPS, IDR], 3600, keyframe=True), 1.04)
    assert first is not None and same is not None and first.codec is same.codec
    other_pps = bytes([0x68, 0xCE, 0x3C, 0x81])
    changed = n.push(raw([SPS, other_pps, IDR], 7200, keyframe=True), 1.08)
    assert changed is not None and changed.codec is not first.codec


def test_missing_timestamps_are_synthesised_and_monotonic() -> None:
    n = Normaliser()
    n.start([track(annexb.join_nals([SPS, PPS]))])
    a = n.push(raw([IDR], None, keyframe=True), 1.0)
    b = n.push(raw([P_SLICE], 3600), 1.04)
    assert a is not None and b is not None and b.dts > a.dts


def test_timestamps_continue_across_reconnect_with_wall_clock_gap() -> None:
    n = Normaliser()
    n.start([track(annexb.join_nals([SPS, PPS]))])
    last = None
    for i in range(10):
        last = n.push(raw([IDR if i == 0 else P_SLICE], 1_000_000 + i * 3600, i == 0), 10 + i / 25)
    assert last is not None
    # The camera comes back 5 s later with its clock restarted near zero.
    n.start([track(annexb.join_nals([SPS, PPS]))])
    after = n.push(raw([IDR], 0, keyframe=True), 10 + 9 / 25 + 5.0)
    assert after is not None
    gap = (after.dts - last.dts) * TB
    assert 4.9 <= gap <= 5.1
    assert after.codec is last.codec  # same parameters: consumers see no change


def test_backward_jump_is_rebased() -> None:
    n = Normaliser()
    n.start([track(annexb.join_nals([SPS, PPS]))])
    a = n.push(raw([IDR], 8_000_000_000, True), 1.0)
    b = n.push(raw([P_SLICE], 10), 1.04)  # 33-bit wrap / camera clock reset
    assert a is not None and b is not None and 0 < b.dts - a.dts <= 3600


def test_sequence_numbers_increase() -> None:
    n = Normaliser()
    n.start([track(annexb.join_nals([SPS, PPS]))])
    seqs = [n.push(raw([P_SLICE], i * 3600), i).seq for i in range(3)]  # type: ignore[union-attr]
    assert seqs == [1, 2, 3]


def test_unsupported_video_codec() -> None:
    with pytest.raises(UnsupportedCodec, match="mjpeg"):
        Normaliser().start([track(codec="mjpeg")])
    with pytest.raises(UnsupportedCodec, match="no video"):
        Normaliser().start([])


def test_audio_and_video_share_one_offset_per_session() -> None:
    audio = Track(index=1, kind="audio", codec="aac", time_base=Fraction(1, 8000))
    n = Normaliser()
    for reconnect in range(2):
        n.start([track(annexb.join_nals([SPS, PPS])), audio])
        base = 5_000_000 * (reconnect + 1)  # the camera's clock, in 90 kHz units
        video = n.push(raw([IDR], base, True), 100.0 + 10 * reconnect)
        # Audio that the camera stamped 0.5 s after that picture (same clock, via RTCP).
        sound = n.push(
            RawPacket(
                track=1,
                data=b"\x01",
                pts=base * 8000 // 90000 + 4000,
                dts=base * 8000 // 90000 + 4000,
                keyframe=True,
            ),
            100.1 + 10 * reconnect,
        )
        assert video is not None and sound is not None
        assert sound.pts_seconds - video.pts_seconds == pytest.approx(0.5, abs=1 / 4000)
