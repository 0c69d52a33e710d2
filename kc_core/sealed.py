"""Sealed cookie values: encrypted and authenticated, so a framework's cookie session can
hold a pending login (its PKCE verifier and nonce) without showing it to anyone.

Frameworks' default cookie sessions (Flask's, Starlette's ``SessionMiddleware``, Pyramid's
``SignedCookieSessionFactory``) only sign their data: it is base64 anyone can read. A
:class:`CookieSealer` gives them the same shape of value, sealed with AES-GCM under a key
derived (HKDF-SHA256) from the app's secret and a purpose, and stamped with its time::

    sealer = CookieSealer(os.environ["SESSION_SECRET"], purpose="session")
    text = sealer.seal(b'{"kc.logins": ...}')
    sealer.unseal(text, max_age=3600)   # the bytes again, or ValueError
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CookieSealer"]

_VERSION = b"\x01"
_NONCE_SIZE = 12
_STAMP = struct.Struct(">Q")
_MIN_SECRET = 16


class CookieSealer:
    """Seals bytes into cookie-safe text and opens them again; safe to share between threads.

    Args:
        secret: the app's secret (at least 16 bytes); rotating it drops every sealed value.
        purpose: what the values are for (``"session"``): values sealed for one purpose
            never open for another, even under the same secret.

    Raises:
        ValueError: the secret is too short.
    """

    def __init__(self, secret: str | bytes, *, purpose: str) -> None:
        material = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(material) < _MIN_SECRET:
            raise ValueError(f"the secret needs at least {_MIN_SECRET} bytes")
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"kc_core.sealed",
            info=purpose.encode(),
        ).derive(material)
        self._aead = AESGCM(key)
        self._purpose = purpose.encode()

    def seal(self, data: bytes) -> str:
        """``data`` encrypted, authenticated and stamped with the current time (URL-safe)."""
        nonce = os.urandom(_NONCE_SIZE)
        plain = _STAMP.pack(int(time.time())) + data
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plain, self._purpose)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def unseal(self, text: str | bytes, *, max_age: float | None = None) -> bytes:
        """The bytes :meth:`seal` sealed.

        Raises:
            ValueError: ``text`` was not sealed by this sealer (tampered, another secret or
                purpose), or is older than ``max_age`` seconds.
        """
        raw = text.encode("ascii", "replace") if isinstance(text, str) else text
        try:
            sealed = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not a sealed value") from exc
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE_SIZE + _STAMP.size:
            raise ValueError("not a sealed value")
        nonce = sealed[1 : 1 + _NONCE_SIZE]
        try:
            plain = self._aead.decrypt(nonce, sealed[1 + _NONCE_SIZE :], self._purpose)
        except InvalidTag as exc:
            raise ValueError("the sealed value was changed or sealed with another key") from exc
        (stamp,) = _STAMP.unpack_from(plain)
        if max_age is not None and stamp + max_age < time.time():
            raise ValueError("the sealed value has expired")
        return plain[_STAMP.size :]
