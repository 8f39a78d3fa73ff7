"""Credentials and allowances the test suite runs the gateway with, and the leak check.

Every gateway a test starts has an admin: ``tests/conftest.py`` puts ``ADMIN_TOKEN`` in
``SHARPEYES_ADMIN_TOKEN`` for the whole session (in-process apps read it at start, and
``sharpeyes serve`` subprocesses inherit it), so a test authenticates by sending
``ADMIN_HEADERS`` — ``httpx.AsyncClient(..., headers=ADMIN_HEADERS)`` for an in-process app,
``GatewayProcess.get/post/delete`` for the real process (they add it).

Test cameras listen on 127.0.0.1, which the gateway's network policy refuses by default:
a configuration that points cameras at loopback says so explicitly with ``LOOPBACK``
(YAML) or ``LOOPBACK_ENV`` (environment of a ``sharpeyes serve`` process).
"""

from __future__ import annotations

ADMIN_TOKEN = "se_test-admin-0123456789abcdefghijklmnopqrstuvwxyz"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LOOPBACK = "security: {allow_loopback_cameras: true}\n"
LOOPBACK_ENV = {"SHARPEYES_SECURITY__ALLOW_LOOPBACK_CAMERAS": "true"}


def leaked(secrets: frozenset[str], texts: list[tuple[str, bytes]]) -> list[str]:
    """``where`` of each ``(where, text)`` whose text contains one of ``secrets``."""
    if not secrets:
        return []
    needles = [s.encode() for s in secrets]
    return [where for where, text in texts if any(n in text for n in needles)]
