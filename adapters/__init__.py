"""Camera adapters: each turns a kind of device into a blocking packet source for the hub."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from adapters import demo, rtsp
from adapters.source import Source
from gateway import errors
from gateway.redact import mask_url

if TYPE_CHECKING:
    from gateway.netpolicy import NetPolicy


def open_source(
    url: str,
    username: str | None = None,
    password: str | None = None,
    *,
    transport: str = "tcp",
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
    policy: NetPolicy | None = None,
) -> Source:
    """The adapter for ``url``'s scheme; nothing is connected until ``open()``.

    With a ``policy`` (the gateway always passes its own) the camera's address is checked
    at every ``open()`` and the stream is opened at the checked address (gateway/netpolicy.py).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in rtsp.SCHEMES:
        return rtsp.RtspSource(
            url,
            username,
            password,
            transport=transport,
            open_timeout=open_timeout,
            read_timeout=read_timeout,
            policy=policy,
        )
    if scheme == demo.SCHEME:
        return demo.DemoSource(url)
    raise errors.InvalidInput(f"unsupported camera URL scheme: {mask_url(url)}", field="url")
