"""Masking of credentials in URLs, log lines and error text.

Camera URLs carry passwords in their userinfo, and FFmpeg/PyAV echo URLs in their error
messages, so every text that leaves the process passes through :func:`redact`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

# scheme://user:pass@host — the password part may contain anything but '@' and whitespace.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_MASK = "***"


def mask_url(url: str) -> str:
    """``rtsp://admin:pw@host/p`` → ``rtsp://***@host/p``; URLs without userinfo unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{_MASK}@{host}"))


class Redactor:
    """Removes URL userinfo and every registered secret from text."""

    def __init__(self) -> None:
        # Replaced, never mutated: threads add secrets while others iterate (copy-on-write).
        self._secrets: frozenset[str] = frozenset()

    @property
    def secrets(self) -> frozenset[str]:
        """Every secret registered so far (the test suite's leak check reads them)."""
        return self._secrets

    def add(self, secret: str | None) -> None:
        # Very short secrets would mask ordinary words.
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = self._secrets | {secret}

    def __call__(self, text: str) -> str:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text


redact = Redactor()


class RedactingFilter(logging.Filter):
    """Applied to every handler: no log record leaves with a credential in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text is rendered later by the formatter; pre-render it masked.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True
