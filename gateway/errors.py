"""The gateway's error hierarchy.

Every error the product raises on purpose derives from :class:`GatewayError` and also from
the builtin it resembles (as aiohttp's ``client_exceptions`` do), so callers may catch
either. Each class carries a stable machine-readable ``code`` that the API returns and an
HTTP ``status``. Messages must never contain secrets: build them from masked URLs
(:func:`gateway.redact.mask_url`).
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every deliberate error in the gateway."""

    code = "gateway_error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(GatewayError, ValueError):
    """A request or configuration value that is not acceptable."""

    code = "invalid_input"
    status = 422

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.field = field


class NotFound(GatewayError, LookupError):
    code = "not_found"
    status = 404


class Conflict(GatewayError):
    code = "conflict"
    status = 409


class Unauthenticated(GatewayError, PermissionError):
    """No credentials, or credentials that are not valid (unknown, expired, revoked)."""

    code = "unauthenticated"
    status = 401
    # RFC 9110: a 401 names the scheme the client should use.
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="sharpeyes"'}


class Forbidden(GatewayError, PermissionError):
    """Authenticated, but the role does not allow this (objects out of scope are NotFound)."""

    code = "forbidden"
    status = 403


class TooManyRequests(GatewayError):
    """A rate limit: ``retry_after`` seconds until the client may try again."""

    code = "too_many_requests"
    status = 429

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(max(1, round(retry_after)))}


class Overloaded(GatewayError):
    """A configured limit is reached; the client may retry later."""

    code = "overloaded"
    status = 503


# --- camera sources ----------------------------------------------------------------------
# ``reason`` is the camera status vocabulary (see gateway.hub.status.Reason).


class SourceError(GatewayError, ConnectionError):
    """A camera source could not be opened or read."""

    code = "source_error"
    status = 502
    reason = "protocol_error"


class CameraAuthFailed(SourceError, PermissionError):
    code = "camera_auth_failed"
    reason = "auth_failed"


class CameraNotFound(SourceError, FileNotFoundError):
    """The device answered but has no such stream (RTSP 404, wrong path)."""

    code = "camera_stream_not_found"
    reason = "not_found"


class CameraTimeout(SourceError, TimeoutError):
    code = "camera_timeout"
    reason = "timeout"


class CameraRefused(SourceError, ConnectionRefusedError):
    code = "camera_refused"
    reason = "refused"


class CameraUnreachable(SourceError):
    """No route, unknown host name, network down."""

    code = "camera_unreachable"
    reason = "unreachable"


class UnsupportedCodec(SourceError, ValueError):
    code = "camera_unsupported_codec"
    reason = "unsupported_codec"


class StreamEnded(SourceError, EOFError):
    """The camera closed the stream (server stopped, session torn down)."""

    code = "camera_stream_ended"
    reason = "stream_ended"


class StreamClosed(GatewayError, EOFError):
    """A hub subscriber was closed: its camera stream stopped or was removed."""

    code = "stream_closed"
    status = 410


def source_error(reason: str, message: str) -> SourceError:
    """The source error class for a status ``reason`` (a camera that went offline)."""
    for cls in (
        CameraAuthFailed,
        CameraNotFound,
        CameraTimeout,
        CameraRefused,
        CameraUnreachable,
        UnsupportedCodec,
        StreamEnded,
    ):
        if cls.reason == reason:
            return cls(message)
    return SourceError(message)
