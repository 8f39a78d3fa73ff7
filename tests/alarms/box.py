"""A simulated alarm box: it signs its requests exactly as a real one does.

The signing and the body come from the product's reference code (adapters.alarms), which
vendors are pointed to; a test that used its own copy could agree with a broken gateway.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from adapters.alarms import message, signature

_nonces = itertools.count(1)


class Box:
    def __init__(self, base_url: str, device: str, secret: str) -> None:
        self.base_url = base_url
        self.device = device
        self.secret = secret
        self.last: tuple[bytes, dict[str, str]] | None = None  # for replaying

    def request(
        self, kind: str, *, clock_offset: float = 0.0, secret: str | None = None, **info: Any
    ) -> tuple[bytes, dict[str, str]]:
        body = message.encode(kind, nonce=f"n{next(_nonces)}", device_time=time.time(), info=info)
        headers = signature.sign(secret or self.secret, body, now=time.time() + clock_offset)
        return body, headers

    def send(self, kind: str, **kwargs: Any) -> httpx.Response:
        body, headers = self.request(kind, **kwargs)
        self.last = (body, headers)
        return self.post(body, headers)

    def replay(self) -> httpx.Response:
        assert self.last is not None
        return self.post(*self.last)

    def post(self, body: bytes, headers: dict[str, str], **params: str) -> httpx.Response:
        url = f"{self.base_url}/api/v1/alarms/{self.device}"
        return httpx.post(url, content=body, headers=headers, params=params, timeout=20)
