"""Prometheus text exposition: per-camera health and traffic, online rate per region."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.catalog.codes import parse_region_code
from gateway.catalog.models import Camera
from gateway.hub.hub import MAIN
from gateway.hub.status import State

if TYPE_CHECKING:
    from gateway.app import Gateway


async def region_counts(
    gateway: Gateway, counted: Callable[[Camera], bool] = lambda _: True
) -> dict[str, tuple[int, int]]:
    """region code → (cameras in its subtree, of which online), for every level.

    ``counted``: only these cameras (a principal's scope: ``scope.allows``).
    """
    cameras = [c for c in await gateway.store.all_cameras() if counted(c)]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for camera in cameras:
        stream = gateway.hub.find(camera.id, MAIN)
        online = int(stream is not None and stream.status.state == State.ONLINE)
        code: str | None = camera.region
        while code is not None:
            totals[code][0] += 1
            totals[code][1] += online
            code = parse_region_code(code).parent
    return {code: (t, o) for code, (t, o) in totals.items()}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def render(gateway: Gateway) -> str:
    cameras = await gateway.store.all_cameras()
    families: dict[str, tuple[str, str, list[str]]] = {}

    def sample(name: str, kind: str, help_: str, labels: dict[str, str], value: float) -> None:
        family = families.setdefault(name, (kind, help_, []))
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        family[2].append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    for camera in cameras:
        stream = gateway.hub.find(camera.id, MAIN)
        if stream is None:
            continue
        s = stream.status
        labels = {"camera": camera.id, "region": camera.region, "class": camera.camera_class.value}
        sample(
            "sharpeyes_camera_online",
            "gauge",
            "1 if the camera is online",
            labels,
            int(s.state == State.ONLINE),
        )
        sample(
            "sharpeyes_camera_active",
            "gauge",
            "1 while the gateway pulls the camera",
            labels,
            int(stream.running),
        )
        sample("sharpeyes_camera_packets_total", "counter", "packets received", labels, s.packets)
        sample("sharpeyes_camera_bytes_total", "counter", "bytes received", labels, s.bytes)
        sample(
            "sharpeyes_camera_reconnects_total",
            "counter",
            "failed pulls retried",
            labels,
            s.reconnects,
        )
        sample(
            "sharpeyes_camera_consumer_drops_total",
            "counter",
            "packets dropped for slow consumers",
            labels,
            stream.dropped_total(),
        )
        sample(
            "sharpeyes_camera_consumers",
            "gauge",
            "consumers subscribed",
            labels,
            stream.subscriber_count,
        )
        sample("sharpeyes_camera_fps", "gauge", "measured frame rate", labels, s.fps)
        sample("sharpeyes_camera_bitrate_bps", "gauge", "measured bit rate", labels, s.bitrate)
    for code, (total, online) in sorted((await region_counts(gateway)).items()):
        sample(
            "sharpeyes_region_cameras",
            "gauge",
            "cameras in the region's subtree",
            {"region": code},
            total,
        )
        sample(
            "sharpeyes_region_online_ratio",
            "gauge",
            "share of the region's cameras online",
            {"region": code},
            online / total if total else 0.0,
        )
    for name, kind, help_, labels, value in await gateway.analytics.metric_samples(cameras):
        sample(name, kind, help_, labels, value)
    relay = gateway.relay
    sample("sharpeyes_relay_sessions", "gauge", "WHEP viewer sessions", {}, len(relay.sessions()))
    sample(
        "sharpeyes_relay_sessions_opened_total",
        "counter",
        "WHEP sessions answered",
        {},
        relay.opened,
    )
    for reason, count in sorted(relay.ended.items()):
        sample(
            "sharpeyes_relay_sessions_ended_total",
            "counter",
            "WHEP sessions ended, by why",
            {"reason": reason},
            count,
        )
    for code, count in sorted(relay.refused.items()):
        sample(
            "sharpeyes_relay_offers_refused_total",
            "counter",
            "WHEP offers refused, by code",
            {"code": code},
            count,
        )
    out = []
    for name, (kind, help_, lines) in families.items():
        out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *lines]
    return "\n".join(out) + "\n" + await gateway.recorder.metrics()
