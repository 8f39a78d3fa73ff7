"""Why an alarm request was refused: one class and one stable code per fix the sender needs.

A box that is refused must tell its installer what to change — the secret
(``bad_signature``), its clock (``stale_timestamp``: the message carries the gateway's time),
its retry logic (``replayed_request``: the same signed request twice), or its configured
device code (``unknown_alarm_device``). None of them says anything about the secret itself.
"""

from __future__ import annotations

from gateway.errors import GatewayError, InvalidInput, NotFound


class AlarmAuthFailed(GatewayError, PermissionError):
    """The request does not prove it comes from the device."""

    code = "alarm_auth_failed"
    status = 401


class SignatureMissing(AlarmAuthFailed):
    code = "signature_missing"


class BadTimestamp(AlarmAuthFailed):
    code = "bad_timestamp"


class BadSignature(AlarmAuthFailed):
    code = "bad_signature"


class StaleTimestamp(AlarmAuthFailed):
    code = "stale_timestamp"


class BadToken(AlarmAuthFailed):
    code = "bad_token"


class ReplayedRequest(AlarmAuthFailed):
    """A correctly signed request the gateway has already accepted."""

    code = "replayed_request"
    status = 409


class UnknownAlarmDevice(NotFound):
    code = "unknown_alarm_device"


class InvalidAlarm(InvalidInput):
    """The body is authentic but not an alarm message the gateway understands."""

    code = "invalid_alarm"


class AlarmTooLarge(InvalidAlarm):
    code = "alarm_too_large"
    status = 413
