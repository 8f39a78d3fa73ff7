"""``sharpeyes discover``: find ONVIF cameras by WS-Discovery, from the command line.

Marks the devices already in the catalog when the catalog file exists (read directly: the
gateway may be running or not). Exit status 0 when at least one device answered, 1 when
none did, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from adapters.onvif.discovery import discover
from gateway import settings as config
from gateway.catalog.models import Camera
from gateway.catalog.store import CatalogStore
from gateway.errors import GatewayError


def register(commands: Any) -> None:
    """Add the ``discover`` subcommand to the ``sharpeyes`` parser."""
    parser = commands.add_parser("discover", help="find ONVIF cameras (WS-Discovery)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--interface", help="multicast out of this interface (address or name)")
    where.add_argument("--host", help="probe this one host by unicast")
    parser.add_argument("--timeout", type=float, help="seconds to collect replies (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--data", type=Path, help="data folder (default from the configuration)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_discover(args))
    except GatewayError as exc:
        print(exc.message, file=sys.stderr)
        return 2


async def _discover(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    catalog = Path(args.data or settings.data_dir) / "catalog.sqlite3"
    cameras: list[Camera] = []
    if catalog.is_file():
        async with await CatalogStore.open(catalog) as store:
            cameras = await store.all_cameras()
    found = await discover(
        settings.onvif, cameras, interface=args.interface, host=args.host, timeout=args.timeout
    )
    for device, camera_id in found:
        if args.json:
            record = {
                "endpoint": device.endpoint,
                "xaddrs": list(device.xaddrs),
                "scopes": list(device.scopes),
                "name": device.name,
                "hardware": device.hardware,
                "sender": device.sender,
                "camera_id": camera_id,
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            known = f"in catalog as {camera_id}" if camera_id else "not in catalog"
            label = " ".join(filter(None, (device.name, device.hardware))) or "?"
            print(f"{device.sender:15}  {label:30}  {' '.join(device.xaddrs)}  ({known})")
    if not found:
        print("no ONVIF device answered", file=sys.stderr)
    return 0 if found else 1
