"""The bounded subscriber: skip-to-keyframe on overflow, bounded memory, clean close."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest

from gateway.errors import StreamClosed
from gateway.hub.packet import CodecParams, Packet
from gateway.hub.subscriber import Subscriber

VIDEO = CodecParams(kind="video", name="h264", time_base=Fraction(1, 90000))


def packet(seq: int, *, keyframe: bool = False, size: int = 100) -> Packet:
    return Packet(
        codec=VIDEO,
        data=bytes(size),
        pts=seq * 3600,
        dts=seq * 3600,
        keyframe=keyframe,
        arrival=float(seq),
        seq=seq,
    )


async def test_delivers_in_order() -> None:
    sub = Subscriber("t", max_packets=10)
    for i in range(5):
        sub.offer(packet(i, keyframe=i == 0))
    assert [(await sub.get()).seq for _ in range(5)] == [0, 1, 2, 3, 4]
    assert sub.dropped == 0


async def test_overflow_skips_to_next_keyframe() -> None:
    sub = Subscriber("slow", max_packets=4)
    sub.offer(packet(0, keyframe=True))
    for i in range(1, 4):
        sub.offer(packet(i))
    sub.offer(packet(4))  # overflow: queue dropped, wait for a keyframe
    sub.offer(packet(5))
    assert sub.queued == 0
    sub.offer(packet(6, keyframe=True))
    sub.offer(packet(7))
    assert [sub.get_nowait().seq for _ in range(2)] == [6, 7]  # type: ignore[union-attr]
    assert sub.dropped == 6 and sub.overflows == 1


async def test_overflow_on_a_keyframe_keeps_it() -> None:
    sub = Subscriber("slow", max_packets=2)
    sub.offer(packet(0, keyframe=True))
    sub.offer(packet(1))
    sub.offer(packet(2, keyframe=True))
    assert sub.get_nowait().seq == 2  # type: ignore[union-attr]
    assert sub.dropped == 2


async def test_byte_bound() -> None:
    sub = Subscriber("big", max_packets=1000, max_bytes=1000)
    for i in range(50):
        sub.offer(packet(i, keyframe=i % 10 == 0, size=300))
        assert sub.queued * 300 <= 1000
    assert sub.dropped > 0


async def test_close_wakes_reader_and_drains() -> None:
    sub = Subscriber("c")
    sub.offer(packet(0, keyframe=True))
    waiter = asyncio.create_task(_read_all(sub))
    await asyncio.sleep(0)
    sub.close("camera removed")
    assert await waiter == [0]
    with pytest.raises(StreamClosed, match="camera removed"):
        await sub.get()
    sub.offer(packet(1, keyframe=True))  # ignored after close
    assert sub.queued == 0


async def _read_all(sub: Subscriber) -> list[int]:
    return [p.seq async for p in sub]


async def test_on_close_called_once() -> None:
    calls: list[Subscriber] = []
    sub = Subscriber("c", on_close=calls.append)
    sub.close()
    sub.close()
    assert calls == [sub]
