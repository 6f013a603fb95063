"""Credential encryption at rest (Fernet, rotation through MultiFernet).

The cipher is installed by the composition root with :func:`configure_cipher`; the
``EncryptedText`` column type asks for it on every read and write, so a raw dump of the
database never contains a token in clear. Rotation: put the new key first in ``FERNET_KEYS``,
keep the old ones after it, and run ``backorders db rotate-keys``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from connector.errors import ConfigError

_lock = threading.Lock()
_cipher: MultiFernet | None = None


def configure_cipher(keys: Sequence[str]) -> MultiFernet:
    """Install the process-wide cipher; the first key encrypts, every key decrypts."""
    global _cipher
    if not keys:
        raise ConfigError("at least one Fernet key is required", variable="FERNET_KEYS")
    try:
        cipher = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ConfigError("FERNET_KEYS holds a key that is not a valid Fernet key", variable="FERNET_KEYS") from exc
    with _lock:
        _cipher = cipher
    return cipher


def cipher() -> MultiFernet:
    if _cipher is None:
        raise ConfigError("the credential cipher is not configured (call configure_cipher first)")
    return _cipher


def encrypt(plain: str) -> str:
    return cipher().encrypt(plain.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise ConfigError("a stored credential cannot be decrypted with any key in FERNET_KEYS") from exc


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the newest key (MultiFernet.rotate)."""
    return cipher().rotate(token.encode("ascii")).decode("ascii")
