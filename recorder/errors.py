"""Recorder errors: part of the gateway's hierarchy, each also the builtin it resembles."""

from __future__ import annotations

from gateway.errors import GatewayError


class DiskFull(GatewayError, OSError):
    """The recordings file system has no room left (ENOSPC, EDQUOT)."""

    code = "disk_full"
    status = 507


class CodecChange(GatewayError, ValueError):
    """The requested range spans a change of codec parameters: one MP4 cannot hold both."""

    code = "codec_change"
    status = 409
