"""The ``sharpeyes`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.onvif.cli import register as register_onvif
from analytics.cli import register as register_analytics
from gateway import settings as config
from gateway.auth.cli import register as register_auth
from gateway.redact import RedactingFilter
from recorder.cli import register as register_recorder


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs its own handlers; route them through ours so they are redacted too.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    settings = config.load(args.config)
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    if args.data:
        settings.data_dir = args.data
    setup_logging(settings.log_level)
    logging.getLogger(__name__).info(
        "serving on http://%s:%d (data in %s)",
        settings.server.host,
        settings.server.port,
        settings.data_dir.resolve(),
    )
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
    )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    settings = config.load(args.file)
    print(f"{args.file}: OK — {len(settings.regions)} region(s), {len(settings.cameras)} camera(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sharpeyes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="YAML configuration file")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.add_argument("--data", type=Path, help="data folder (default ./data)")
    serve.set_defaults(func=_serve)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check_config)

    register_analytics(commands)
    register_auth(commands)
    register_onvif(commands)
    register_recorder(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except config.ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
