"""Configuration: defaults, environment overrides, errors that name field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import settings as config
from gateway.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_file() -> None:
    s = config.load(None, environ={})
    assert s.server.host == "127.0.0.1" and s.server.port == 8080
    assert s.demo.enabled and s.cameras == []


def test_example_config_is_valid() -> None:
    s = config.load(ROOT / "config" / "example.yaml", environ={})
    assert len(s.regions) == 4 and len(s.cameras) == 2
    camera = s.cameras[0].to_camera()
    assert camera.source.password == "change-me"
    assert "change-me" not in repr(camera)


def test_environment_overrides_file() -> None:
    s = config.parse(
        "server:\n  port: 8000\n",
        environ={
            "SHARPEYES_SERVER__PORT": "9001",
            "SHARPEYES_HUB__OPEN_TIMEOUT": "3",
            "SHARPEYES_ADMIN_TOKEN": "not-config",
        },
    )
    assert s.server.port == 9001 and s.hub.open_timeout == 3


BAD = """\
server:
  port: 99999
cameras:
  - id: "34150200001990000001"
    name: gate
    class: D
    region: "341502"
    owner_unit: x
    sector: police
    source:
      main_url: http://10.0.0.1/video
"""


def test_errors_name_field_and_line() -> None:
    with pytest.raises(config.ConfigError) as info:
        config.parse(BAD, source="bad.yaml", environ={})
    lines = info.value.lines
    text = "\n".join(lines)
    assert "bad.yaml:2: server.port" in text
    assert any(
        line.startswith("bad.yaml:4: cameras.0.id") and "type code 199" in line for line in lines
    ), text
    assert "bad.yaml:6: cameras.0.class" in text
    assert any(
        line.startswith("bad.yaml:11: cameras.0.source.main_url") and "rtsp" in line
        for line in lines
    ), text


def test_unknown_key_and_bad_yaml() -> None:
    with pytest.raises(config.ConfigError, match=r"x.yaml:2: server.prot"):
        config.parse("server:\n  prot: 1\n", source="x.yaml", environ={})
    with pytest.raises(config.ConfigError, match=r"y.yaml:2: not valid YAML"):
        config.parse("a: [\n  b: }\n", source="y.yaml", environ={})


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "server.port" in err and "cameras.0.class" in err
    assert main(["check-config", str(ROOT / "config" / "example.yaml")]) == 0
    assert "2 camera(s)" in capsys.readouterr().out
