"""Encryption of secrets at rest (camera passwords in the catalog database).

The key never lives in the database: it comes from ``SHARPEYES_SECRET_KEY`` (32 bytes,
URL-safe base64, e.g. ``python -c "import secrets,base64;print(base64.urlsafe_b64encode(
secrets.token_bytes(32)).decode())"``) or, failing that, from ``secret.key`` beside the
database, created with mode 0600 on first start. A copied database alone therefore gives
away no camera password; back the key up separately, or the passwords must be re-entered.

AES-256-GCM with the row's id as associated data: a ciphertext moved to another camera's
row fails to decrypt instead of lending that camera the password.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import GatewayError
from gateway.redact import redact

KEY_ENV = "SHARPEYES_SECRET_KEY"
KEY_FILE = "secret.key"
_PREFIX = "v1:"  # the format, so that a later key rotation can tell old values apart
_NONCE = 12


class SecretKeyError(GatewayError):
    """The key is missing, malformed, or not the one the data was encrypted with."""

    code = "secret_key_error"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretKeyError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, folder: Path, environ: dict[str, str] | None = None) -> SecretBox:
        """The key from the environment, else ``folder/secret.key`` (created if missing).

        Blocking (file I/O): call it off the event loop.
        """
        env = os.environ if environ is None else environ
        text = env.get(KEY_ENV)
        if text:
            redact.add(text)
            return cls(_decode(text, KEY_ENV))
        path = folder / KEY_FILE
        try:
            # O_EXCL: two processes starting at once cannot both write a key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            text = path.read_text(encoding="ascii").strip()
            redact.add(text)
            return cls(_decode(text, str(path)))
        text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        redact.add(text)
        return cls(base64.urlsafe_b64decode(text))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, context: str) -> str:
        if not token.startswith(_PREFIX):
            raise SecretKeyError(f"the stored secret of {context} is not in a known format")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretKeyError(
                f"the stored secret of {context} cannot be decrypted: the secret key "
                f"({KEY_ENV} or {KEY_FILE}) is not the one it was stored with"
            ) from None
        return plain.decode()


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{where}: not URL-safe base64") from None
    if len(key) != 32:
        raise SecretKeyError(f"{where}: the key must be 32 bytes (44 base64 characters)")
    return key
