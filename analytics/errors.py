"""Errors raised on purpose by the analytics package (see :mod:`gateway.errors`).

A worker scanning many recordings catches :class:`AnalysisError`, logs it with its
``code`` and goes on with the next file; a bad file never stops the scan.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class AnalysisError(GatewayError):
    """Base of the errors met while analysing a recording or a stream."""

    code = "analysis_error"
    status = 500


class CorruptMedia(AnalysisError, ValueError):
    """The file cannot be read as video: not a media file, damaged headers, no decodable picture."""

    code = "corrupt_media"
    status = 422


class TruncatedMedia(CorruptMedia, EOFError):
    """The file stops before its own headers say it should (an interrupted copy or write)."""

    code = "truncated_media"


class NoVideoStream(AnalysisError, LookupError):
    """A readable media file without any video stream (audio only, for instance)."""

    code = "no_video_stream"
    status = 422


class MediaNotFound(AnalysisError, FileNotFoundError):
    code = "media_not_found"
    status = 404
