"""Configuration: a YAML file validated with pydantic, overridable from the environment.

Everything has a default, so ``sharpeyes serve`` runs with no file at all: SQLite under the
data folder, the in-process bus and one synthetic demo camera. ``SHARPEYES_<SECTION>__<KEY>``
environment variables override file values (``SHARPEYES_SERVER__PORT=9000``).
:func:`explain` turns validation errors into lines that name the field and the file line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gateway.api.schemas import CameraIn, RegionIn
from gateway.errors import InvalidInput
from gateway.hub.stream import StreamConfig

ENV_PREFIX = "SHARPEYES_"


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


class Settings(_Section):
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    hub: HubSettings = HubSettings()
    demo: DemoSettings = DemoSettings()
    relay: RelaySettings = RelaySettings()
    regions: list[RegionIn] = []
    cameras: list[CameraIn] = []


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
