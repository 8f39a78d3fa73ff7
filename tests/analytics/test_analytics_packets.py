"""The live path: hub packets (Annex-B, parameter sets before each IDR) into the sampler."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from analytics_clips import ONSET, VTEST_RECIPES, ffmpeg, make_fault

from analytics.analyze import analyze_source
from analytics.config import AnalysisConfig
from analytics.events import EventType
from analytics.sampler import Picture, Pulse, Strategy, decode_packets
from gateway.hub.packet import CodecParams, Packet

ARRIVAL = 1_700_000_000.0  # the gateway's wall clock when the first packet arrived


def hub_packets(clip: Path, tmp_path: Path) -> list[Packet]:
    """The packets the hub would hand out for ``clip`` streamed live.

    MPEG-TS carries H.264 as Annex-B with SPS/PPS repeated before every IDR, just as
    the hub normalises it; the timestamps become arrival times on the gateway's clock.
    """
    ts = tmp_path / f"{clip.stem}.ts"
    ffmpeg("-i", str(clip), "-c", "copy", "-an", "-f", "mpegts", str(ts))
    packets: list[Packet] = []
    with av.open(str(ts)) as container:
        stream = container.streams.video[0]
        codec = CodecParams(
            kind="video",
            name="h264",
            time_base=Fraction(1, 90000),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=25.0,
        )
        first = None
        for p in container.demux(stream):
            if p.pts is None or p.dts is None:
                continue
            first = p.pts if first is None else first
            packets.append(
                Packet(
                    codec=codec,
                    data=bytes(p),
                    pts=p.pts,
                    dts=p.dts,
                    keyframe=p.is_keyframe,
                    arrival=ARRIVAL + (p.pts - first) / 90000,
                    seq=len(packets),
                )
            )
    assert packets[0].keyframe and packets[0].data.startswith(
        (b"\x00\x00\x00\x01", b"\x00\x00\x01")
    )
    return packets


@pytest.fixture(scope="module")
def clean_packets(vtest_base: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Packet]:
    return hub_packets(vtest_base, tmp_path_factory.mktemp("packets"))


def test_keyframes_only(clean_packets: list[Packet]) -> None:
    samples = list(decode_packets(clean_packets, Strategy.parse("keyframes"), 320))
    pictures = [s for s in samples if isinstance(s, Picture)]
    pulses = [s for s in samples if isinstance(s, Pulse)]
    assert len(pulses) == len(clean_packets) and all(p.decodable for p in pulses)
    assert len(pictures) == sum(p.keyframe for p in clean_packets) == 8
    assert [round(p.t - ARRIVAL, 2) for p in pictures] == [float(k) for k in range(8)]
    assert pictures[0].image.shape == (180, 320, 3)


def test_fps_and_auto(clean_packets: list[Packet]) -> None:
    def times(strategy: str) -> list[float]:
        samples = decode_packets(clean_packets, Strategy.parse(strategy), 320)
        return [round(s.t - ARRIVAL, 2) for s in samples if isinstance(s, Picture)]

    assert times("fps:2") == [round(k / 2 - 0.02 * (k % 2), 2) for k in range(16)]
    assert len(times("all")) == 200
    # auto cannot know the first GOP's length: it decodes that one, then keyframes only
    assert times("auto") == [0.0, 0.48, 1.0, *[float(k) for k in range(2, 8)]]


def test_audio_and_packets_before_the_first_keyframe_are_ignored(
    clean_packets: list[Packet],
) -> None:
    audio = Packet(CodecParams("audio", "aac", Fraction(1, 44100)), b"\x01", 0, 0, True, ARRIVAL, 0)
    stream = [audio, *clean_packets[1:30], audio, *clean_packets[30:]]
    pictures = [
        s
        for s in decode_packets(stream, Strategy.parse("keyframes"), 320)
        if isinstance(s, Picture)
    ]
    assert len(pictures) == 7  # the first GOP has no keyframe left


def test_live_fault_detected_on_the_gateway_clock(
    vtest_base: Path, clip_dir: Path, tmp_path: Path
) -> None:
    clip = make_fault(vtest_base, next(r for r in VTEST_RECIPES if r.name == "frozen"), clip_dir)
    samples = decode_packets(hub_packets(clip, tmp_path), Strategy.auto(), 320)
    events = list(analyze_source(samples, AnalysisConfig(), camera="cam-1"))
    frozen = [e for e in events if e.type is EventType.FROZEN]
    assert len(frozen) == 1 and frozen[0].camera == "cam-1"
    assert abs(frozen[0].start - (ARRIVAL + ONSET)) <= 2.0
