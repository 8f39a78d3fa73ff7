"""Configuration: a YAML file validated with pydantic, overridable from the environment.

Everything has a default, so ``sharpeyes serve`` runs with no file at all: SQLite under the
data folder, the in-process bus and one synthetic demo camera. ``SHARPEYES_<SECTION>__<KEY>``
environment variables override file values (``SHARPEYES_SERVER__PORT=9000``).
:func:`explain` turns validation errors into lines that name the field and the file line.
"""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from analytics.sampler import Strategy
from gateway.api.schemas import CameraIn, RegionIn
from gateway.catalog.models import CameraClass
from gateway.errors import InvalidInput
from gateway.hub.stream import StreamConfig

ENV_PREFIX = "SHARPEYES_"
# RFC 1918, carrier-grade NAT (common on provincial video private networks), IPv6 ULA.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
# Cloud metadata services: generic (AWS, Huawei, Azure), Alibaba Cloud (inside 100.64/10),
# Tencent Cloud, and AWS over IPv6.
METADATA_NETWORKS = (
    "169.254.169.254/32",
    "100.100.100.200/32",
    "169.254.0.23/32",
    "fd00:ec2::254/128",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    # Loopback until an operator decides otherwise: video must not be exposed by accident.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class HubSettings(_Section):
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    open_timeout: float = Field(10.0, gt=0, le=120)
    read_timeout: float = Field(10.0, gt=0, le=120)
    idle_stop_after: float = Field(30.0, ge=0, description="on-demand cameras: seconds")
    probe_interval: float = Field(300.0, ge=5, description="health probe of idle cameras")
    probe_timeout: float = Field(15.0, gt=0)
    backoff_initial: float = Field(1.0, gt=0)
    backoff_max: float = Field(60.0, gt=0)
    auth_backoff_initial: float = Field(30.0, gt=0)
    auth_backoff_max: float = Field(600.0, gt=0)
    queue_packets: int = Field(300, ge=10, le=100_000)

    def stream_config(self) -> StreamConfig:
        return StreamConfig(
            idle_stop_after=self.idle_stop_after,
            backoff_initial=self.backoff_initial,
            backoff_max=self.backoff_max,
            auth_backoff_initial=self.auth_backoff_initial,
            auth_backoff_max=self.auth_backoff_max,
            queue_packets=self.queue_packets,
        )


class DemoSettings(_Section):
    enabled: bool = True
    id: str = "11010500001320000001"
    region: str = "110105"
    region_name: str = "Demo county"
    url: str = "demo://demo?width=640&height=360&fps=15"


class IceServerSettings(_Section):
    urls: list[str] = Field(min_length=1, description="stun:HOST:PORT or turn:HOST:PORT")
    username: str | None = None
    credential: SecretStr | None = Field(None, description="TURN password: never logged")


class IceSettings(_Section):
    # Empty: every address of every interface except loopback (aioice's own choice).
    host_addresses: list[str] = Field(default_factory=list, description="addresses to offer")
    port_min: int | None = Field(None, ge=1024, le=65535, description="UDP port range start")
    port_max: int | None = Field(None, ge=1024, le=65535, description="UDP port range end")
    servers: list[IceServerSettings] = Field(default_factory=list, description="STUN/TURN")

    @model_validator(mode="after")
    def _range(self) -> IceSettings:
        if (self.port_min is None) != (self.port_max is None):
            raise ValueError("port_min and port_max go together")
        if self.port_min is not None and self.port_min > (self.port_max or 0):
            raise ValueError("port_min must not exceed port_max")
        return self


class RelaySettings(_Section):
    max_viewers_per_camera: int = Field(50, ge=1, le=10_000)
    max_viewers: int = Field(200, ge=1, le=100_000, description="WebRTC viewers on this node")
    start_timeout: float = Field(10.0, gt=0, le=120, description="idle camera: first keyframe")
    connect_timeout: float = Field(20.0, gt=0, le=300, description="ICE+DTLS, else reaped")
    catchup_speed: float = Field(8.0, ge=1, le=100, description="fast start: GOP replay speed")
    ice: IceSettings = IceSettings()


class RetentionDays(_Section):
    """Days of footage kept per camera class (public-video rules: at least 30, 90 for some)."""

    a: float = Field(90.0, gt=0, le=3650, description="class A (一类)")
    b: float = Field(30.0, gt=0, le=3650, description="class B (二类)")
    c: float = Field(30.0, gt=0, le=3650, description="class C (三类)")

    def of(self, camera_class: CameraClass) -> float:
        days: float = getattr(self, camera_class.value.lower())
        return days


class RecorderSettings(_Section):
    enabled: bool = True
    root: Path | None = Field(None, description="segment folder; default <data_dir>/recordings")
    segment_seconds: float = Field(60.0, ge=2, le=3600, description="cut at the next keyframe")
    fragment_seconds: float = Field(1.0, ge=0.2, le=10, description="most a crash can lose")
    sync_interval: float = Field(1.0, ge=0, le=60, description="fdatasync cadence; 0: on close")
    gap_seconds: float = Field(3.0, ge=0.5, le=300, description="silence recorded as a gap")
    disk_full_retry: float = Field(5.0, ge=0.1, le=300, description="after ENOSPC: pause")
    batch_seconds: float = Field(0.25, ge=0, le=2, description="packets handed over at once")
    queue_packets: int = Field(3000, ge=100, le=100_000, description="hub queue for the recorder")
    writer_threads: int = Field(4, ge=1, le=64)
    retention_days: RetentionDays = RetentionDays()
    camera_retention_days: dict[str, float] = Field(
        default_factory=dict, description="camera id: days, overriding its class"
    )
    low_water: ByteSize = Field(ByteSize(2 * 1024**3), description="free space to keep")
    low_water_percent: float = Field(5.0, ge=0, le=90, description="or this share, if larger")
    full_reserve: ByteSize = Field(
        ByteSize(256 * 1024**2), description="under this the disk counts as full"
    )
    floor_hours: float = Field(24.0, ge=0, description="younger footage goes only on a full disk")
    retention_interval: float = Field(60.0, ge=1, le=3600)
    export_max_hours: float = Field(24.0, gt=0, le=24 * 31)
    export_keep_seconds: float = Field(600.0, ge=0, description="built exports served again")


class OnvifSettings(_Section):
    timeout: float = Field(10.0, gt=0, le=120, description="one ONVIF request, seconds")
    compensate_clock: bool = Field(True, description="sign with the device's clock if it is off")
    clock_tolerance: float = Field(5.0, ge=0, description="clock offset reported beyond, s")
    discovery_interface: str | None = Field(None, description="address or name; None: default")
    discovery_timeout: float = Field(3.0, gt=0, le=30)
    health_interval: float = Field(300.0, ge=5, description="re-check of address and streams")
    events: bool = Field(True, description="PullPoint alarms (motion, tamper, inputs) to the bus")
    pull_timeout: float = Field(10.0, ge=1, le=60, description="PullMessages long-poll, s")
    subscription_ttl: float = Field(120.0, ge=10, le=3600, description="renewed at 80 %")
    backoff_initial: float = Field(1.0, gt=0)
    backoff_max: float = Field(60.0, gt=0)


class SecuritySettings(_Section):
    """Access control, limits and the camera network policy (gateway/auth, gateway/netpolicy).

    The bootstrap admin token and the secret key come from the environment
    (``SHARPEYES_ADMIN_TOKEN``, ``SHARPEYES_SECRET_KEY``), never from this file.
    """

    camera_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network(n) for n in PRIVATE_NETWORKS],
        description="cameras, ONVIF devices and snapshot URLs must resolve into these",
    )
    blocked_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network(n) for n in METADATA_NETWORKS],
        description="refused even inside camera_networks (cloud metadata services)",
    )
    allow_loopback_cameras: bool = Field(False, description="127.0.0.0/8, ::1 (tests, demos)")
    allow_link_local_cameras: bool = Field(False, description="169.254.0.0/16, fe80::/10")
    allow_own_ports: bool = Field(False, description="this host's gateway port as a camera")
    session_idle_minutes: float = Field(30.0, gt=0, le=24 * 60, description="web login")
    session_max_hours: float = Field(12.0, gt=0, le=7 * 24, description="web login, at most")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Secure cookie attribute; auto: when the request came over https"
    )
    token_max_days: float = Field(366.0, gt=0, le=3660, description="longest token lifetime")
    max_body_bytes: ByteSize = Field(ByteSize(1024**2), description="larger requests: 413")
    login_failures: int = Field(5, ge=1, le=1000, description="per user or address, then 429")
    failure_window: float = Field(900.0, ge=10, le=86_400, description="failures kept, s")
    requests_per_second: float = Field(100.0, gt=0, description="per principal, sustained")
    request_burst: int = Field(500, ge=1, description="per principal, at once")
    live_sessions_per_principal: int = Field(16, ge=1, le=10_000, description="WHEP viewers")


def _strategy(text: str) -> str:
    Strategy.parse(text)  # its ValueError names the accepted forms
    return text


StrategyText = Annotated[str, AfterValidator(_strategy)]


class LiveSamplingSettings(_Section):
    """Live cameras the analytics worker samples, and how (see analytics/live.py)."""

    mode: Literal["off", "interval", "continuous"] = Field(
        "interval", description="interval: `window` seconds every `every` seconds"
    )
    every: float = Field(300.0, ge=10, le=86_400, description="interval mode: window period, s")
    window: float = Field(15.0, ge=3, le=3600, description="interval mode: seconds sampled")
    strategy: StrategyText = Field("keyframes", description="keyframes, auto, all or fps:N")
    stream: Literal["main", "sub"] = Field("sub", description="sub: main where there is none")
    tags: list[str] = Field(default_factory=list, description="only cameras with one of these")
    classes: list[CameraClass] = Field(default_factory=list, description="only these classes")
    recorded: bool = Field(False, description="also cameras that record (else: recordings)")
    signal_loss_after: float = Field(5.0, ge=1, le=300, description="silence that is a loss, s")

    @field_validator("mode", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @model_validator(mode="after")
    def _window(self) -> LiveSamplingSettings:
        if self.mode == "interval" and self.window >= self.every:
            raise ValueError("window must be shorter than every (or use mode: continuous)")
        return self


class AnalyticsSettings(_Section):
    """Video-quality diagnosis (analytics/): a worker process beside the gateway."""

    enabled: bool = Field(False, description="start the analytics worker with the gateway")
    workers: int = Field(1, ge=1, le=32, description="processes; cameras are spread over them")
    strategy: StrategyText = Field("auto", description="recordings: auto, keyframes, all, fps:N")
    width: int = Field(320, ge=64, le=1920, description="pictures are analysed this wide, px")
    live: LiveSamplingSettings = LiveSamplingSettings()
    watch_dir: Path | None = Field(None, description="scan finished recordings appearing here")
    watch_interval: float = Field(10.0, ge=0.5, le=3600, description="watch_dir scan period, s")
    settle_seconds: float = Field(5.0, ge=0, le=3600, description="unchanged this long: complete")
    queue_batches: int = Field(256, ge=8, le=100_000, description="channel to each worker")
    retention_days: float = Field(90.0, gt=0, le=3650, description="analytics events kept")


class WebhookSettings(_Section):
    url: AnyHttpUrl = Field(description="receives a signed POST per event")
    secret: SecretStr = Field(min_length=16, description="HMAC-SHA256 key: never logged")
    types: list[str] = Field(
        default_factory=lambda: ["emergency", "tamper", "test", "device_offline", "device_online"],
        description="event types sent; empty: every event",
    )


class AlarmSettings(_Section):
    """School one-button alarms (adapters/alarms, gateway/alarms) and the events stream."""

    replay_window: float = Field(60.0, ge=5, le=900, description="signed request's age limit, s")
    heartbeat_interval: float = Field(60.0, ge=5, le=86_400, description="a box's default, s")
    offline_after_missed: int = Field(3, ge=1, le=100, description="heartbeats, then offline")
    renotify_after: float = Field(120.0, ge=1, le=86_400, description="unacknowledged: again, s")
    renotify_limit: int = Field(10, ge=0, le=1000, description="re-notifications per alarm")
    hold_before: float = Field(300.0, ge=0, le=86_400, description="evidence hold: s before")
    hold_after: float = Field(600.0, ge=1, le=86_400, description="evidence hold: s after")
    snapshot_timeout: float = Field(10.0, gt=0, le=60, description="per linked camera, s")
    scan_interval: float = Field(5.0, ge=0.05, le=60, description="offline/re-notify checks, s")
    max_body: int = Field(16_384, ge=1024, le=1_048_576, description="alarm request, bytes")
    stream_keepalive: float = Field(15.0, ge=0.5, le=300, description="SSE comment every, s")
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    webhook_timeout: float = Field(5.0, gt=0, le=60, description="one delivery attempt, s")
    webhook_attempts: int = Field(6, ge=1, le=20, description="per event, then dropped")
    webhook_backoff_initial: float = Field(1.0, gt=0, le=60)
    webhook_backoff_max: float = Field(60.0, gt=0, le=3600)
    webhook_queue: int = Field(1000, ge=1, le=100_000, description="per URL; oldest dropped")


class Settings(_Section):
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    hub: HubSettings = HubSettings()
    demo: DemoSettings = DemoSettings()
    relay: RelaySettings = RelaySettings()
    recorder: RecorderSettings = RecorderSettings()
    onvif: OnvifSettings = OnvifSettings()
    regions: list[RegionIn] = []
    cameras: list[CameraIn] = []
    redis_url: SecretStr | None = Field(None, description="Redis Streams bus; none: in-process")
    analytics: AnalyticsSettings = AnalyticsSettings()
    security: SecuritySettings = SecuritySettings()
    alarms: AlarmSettings = AlarmSettings()


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``path`` (optional) and the environment; raises :class:`ConfigError`."""
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}", []) from None
    return parse(text, source=str(path or "<defaults>"), environ=environ)


def parse(
    text: str, *, source: str = "<config>", environ: dict[str, str] | None = None
) -> Settings:
    try:
        node = yaml.compose(text) if text.strip() else None
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})", []) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections", [])
    _apply_environment(data, os.environ if environ is None else environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = explain(exc, node, source)
        raise ConfigError(f"{source}: {len(lines)} error(s)\n" + "\n".join(lines), lines) from None


class ConfigError(InvalidInput):
    code = "invalid_config"

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__(message)
        self.lines = lines


def explain(exc: ValidationError, node: yaml.Node | None, source: str) -> list[str]:
    """One line per error: ``file:line: dotted.field: message``."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if not str(part).startswith("function-")]
        line = _line_of(node, loc)
        where = f"{source}:{line}" if line else source
        field = ".".join(str(p) for p in loc) or "(top level)"
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"{where}: {field}: {message}")
    return lines


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on the error's path."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                # an unknown or missing key: point at the key itself if present
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else best
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            return best
        best = node.start_mark.line + 1
    return best


def _apply_environment(data: dict[str, Any], environ: Any) -> None:
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in Settings.model_fields:
            continue  # other SHARPEYES_ variables (tokens, keys) are not configuration
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            target[path[-1]] = value
