"""ONVIF failures, each a :mod:`gateway.errors` class with a stable code of its own.

An integrator onboarding a camera by IP and password needs to know which of four things
went wrong, because each has a different fix: the password (``onvif_auth_failed``), the
network or address (``onvif_unreachable``), the port pointing at a web server that is not
ONVIF (``not_onvif``), or the device's clock (``onvif_clock_skew``: WS-Security signs every
request with a timestamp, so a camera without NTP refuses even the right password).
"""

from __future__ import annotations

import asyncio
import errno

import aiohttp
import zeep.exceptions
from lxml import etree
from onvif.exceptions import ONVIFError

from gateway import errors
from gateway.redact import redact


class OnvifAuthFailed(errors.CameraAuthFailed):
    code = "onvif_auth_failed"


class OnvifUnreachable(errors.CameraUnreachable):
    """Refused, no route, unknown host name or no answer in time."""

    code = "onvif_unreachable"


class NotOnvif(errors.SourceError):
    """Something answered on the port, but not with SOAP: a web page, another protocol."""

    code = "not_onvif"


class OnvifClockSkew(errors.SourceError):
    code = "onvif_clock_skew"
    reason = "auth_failed"  # what the camera's status shows: it refuses our signatures


class OnvifFault(errors.SourceError):
    """The device understood the request and refused it with a SOAP fault."""

    code = "onvif_fault"


class NotAnOnvifCamera(errors.Conflict):
    """The catalog camera was not onboarded through ONVIF (a plain RTSP camera)."""

    code = "not_onvif_camera"


class PtzUnsupported(errors.Conflict):
    code = "ptz_unsupported"


class EventsUnsupported(errors.Conflict):
    code = "events_unsupported"


# Fault subcodes and texts that mean "who are you": ONVIF's ter:NotAuthorized, WS-Security's
# wsse:FailedAuthentication, and the free texts of firmwares that send neither.
_AUTH_WORDS = (
    "notauthorized",
    "not authorized",
    "not authorised",
    "unauthorized",
    "failedauthentication",
    "authentication",
    "invalid password",
    "invalid username",
    "access denied",
)


def is_auth_fault(exc: zeep.exceptions.Fault) -> bool:
    subcodes = exc.subcodes if isinstance(exc.subcodes, list) else []
    texts = [str(exc.message or ""), str(exc.code or "")]
    texts += [getattr(code, "text", None) or str(code) for code in subcodes]
    text = " ".join(texts).lower()
    return any(word in text for word in _AUTH_WORDS)


def _is_soap(exc: zeep.exceptions.Fault) -> bool:
    """zeep reports any non-SOAP error page as a codeless Fault carrying the document."""
    if exc.code is not None:
        return True
    detail = exc.detail
    if isinstance(detail, bytes | str):
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            detail = etree.fromstring(
                detail.encode() if isinstance(detail, str) else detail, parser
            )
        except etree.XMLSyntaxError:
            return False
    return detail is not None and etree.QName(detail).localname in ("Envelope", "Fault", "detail")


def classify(exc: BaseException, where: str) -> errors.SourceError:
    """Map a failure of onvif-zeep-async, zeep or aiohttp to an error with a stable code.

    ``where`` is ``host:port`` (never a URL with credentials). Texts from the device are
    passed through the redactor: some firmwares echo the request, username included.
    """
    if isinstance(exc, errors.SourceError):
        return exc
    if isinstance(exc, ONVIFError) and exc.__cause__ is not None:
        return classify(exc.__cause__, where)  # the library's wrapper around the real error
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return OnvifUnreachable(f"{where}: no answer in time")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return OnvifUnreachable(f"{where}: host name not found")
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        if code == errno.ECONNREFUSED:
            return OnvifUnreachable(f"{where}: connection refused (nothing listens on the port)")
        if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN):
            return OnvifUnreachable(f"{where}: no route to the host")
        return OnvifUnreachable(f"{where}: cannot connect ({exc.os_error.strerror})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return OnvifUnreachable(f"{where}: the device closed the connection without answering")
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return NotOnvif(
            f"{where}: the answer is not HTTP that ONVIF uses ({exc.__class__.__name__})"
        )
    if isinstance(exc, aiohttp.ClientError):
        return OnvifUnreachable(f"{where}: {redact(str(exc)) or exc.__class__.__name__}")
    if isinstance(exc, zeep.exceptions.TransportError):
        if exc.status_code in (401, 403):
            return OnvifAuthFailed(f"{where}: the device refused the credentials")
        return NotOnvif(
            f"{where}: HTTP {exc.status_code} without a SOAP answer: not an ONVIF service"
        )
    if isinstance(exc, zeep.exceptions.XMLSyntaxError | zeep.exceptions.XMLParseError):
        return NotOnvif(f"{where}: the answer is not SOAP: not an ONVIF service")
    if isinstance(exc, zeep.exceptions.Fault):
        if is_auth_fault(exc):
            return OnvifAuthFailed(f"{where}: the device refused the credentials")
        if not _is_soap(exc):
            return NotOnvif(f"{where}: the answer is a web page, not SOAP: not an ONVIF service")
        return OnvifFault(f"{where}: the device refused the request: {redact(str(exc.message))}")
    return errors.SourceError(f"{where}: {redact(str(exc)) or exc.__class__.__name__}")
