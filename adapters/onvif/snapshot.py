"""The JPEG from a device's own snapshot URI (GetSnapshotUri), with digest or basic auth.

Cheaper than the hub's snapshot for an idle camera: one HTTP request instead of an RTSP
session that waits for a keyframe and decodes it. The credentials go out only after the
device asks for them, and basic auth only when it asks for basic.
"""

from __future__ import annotations

import aiohttp

from adapters.onvif import errors
from gateway.errors import GatewayError
from gateway.redact import mask_url

MAX_JPEG = 16 * 1024 * 1024


async def fetch_jpeg(
    uri: str, username: str | None, password: str | None, *, timeout: float = 10.0
) -> bytes:
    where = mask_url(uri)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
    if username and password:
        # Answers a digest challenge by itself; passes a basic one through as a 401.
        middlewares = (aiohttp.DigestAuthMiddleware(username, password),)
    try:
        async with aiohttp.ClientSession(timeout=client_timeout, middlewares=middlewares) as http:
            async with http.get(uri) as response:
                challenge = response.headers.get("WWW-Authenticate", "")
                if response.status == 401 and username and challenge.lower().startswith("basic"):
                    response.release()
                    basic = {"Authorization": aiohttp.encode_basic_auth(username, password or "")}
                    async with http.get(uri, headers=basic) as retried:
                        return await _jpeg(retried, where)
                return await _jpeg(response, where)
    except GatewayError:
        raise
    except Exception as exc:
        raise errors.classify(exc, where) from None


async def _jpeg(response: aiohttp.ClientResponse, where: str) -> bytes:
    if response.status in (401, 403):
        raise errors.OnvifAuthFailed(f"{where}: the device refused the credentials")
    if response.status != 200:
        raise errors.OnvifFault(f"{where}: snapshot answered HTTP {response.status}")
    body = await response.content.read(MAX_JPEG + 1)
    if len(body) > MAX_JPEG or body[:2] != b"\xff\xd8":
        raise errors.NotOnvif(f"{where}: the snapshot is not a JPEG")
    return body
