"""Cookie-only token mode: a session's tokens live in the browser, encrypted, in chunked cookies.

For small apps with no shared server-side store: nothing to run, and any number of processes
serve the same users. The tokens are compressed, encrypted and authenticated with AES-GCM
under a key derived (HKDF-SHA256) from the app's secret, then split into cookies of at most
:data:`CHUNK_SIZE` characters, well under browsers' 4 KB per-cookie limit. A cookie changed
by anyone without the secret fails to decrypt and counts as no session.

Trade-offs against a server-side store: a back-channel logout can only be remembered by the
process that received it (:meth:`CookieTokenStore.end`), and a copied cookie stays usable
until its refresh token expires. Pass it to the engine as its store::

    engine = Engine(config, store=CookieTokenStore(secret=os.environ["APP_SECRET"]))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from email.utils import formatdate

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import ParsedRecords, SessionRecord

__all__ = ["CHUNK_SIZE", "CookieTokenStore"]

#: Longest cookie value written; name and attributes stay far below the rest of 4096 bytes.
CHUNK_SIZE = 3800
_VERSION = b"\x01"
_NONCE_SIZE = 12
_MIN_SECRET = 16
_MAX_ENDED = 100_000


class CookieTokenStore:
    """Encrypts a :class:`SessionRecord` into ``Set-Cookie`` headers and reads it back.

    Cookies are ``HttpOnly``, ``SameSite=Lax``, ``Path=/`` and ``Secure`` under https. The
    first one, ``{name}``, holds ``"<count>.<first chunk>"``; the others are ``{name}.1``,
    ``{name}.2`` ...

    Args:
        secret: the app's secret (at least 16 bytes); rotating it logs everyone out.
        name: the cookie name prefix.
        chunk_size: longest cookie value.
        max_chunks: refuse to write (or read) more cookies than this.

    Raises:
        ValueError: the secret is too short.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        name: str = "kc_tokens",
        chunk_size: int = CHUNK_SIZE,
        max_chunks: int = 8,
    ) -> None:
        material = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(material) < _MIN_SECRET:
            raise ValueError(f"the cookie secret needs at least {_MIN_SECRET} bytes")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"kc_core.stores.cookie", info=b"tokens v1"
        ).derive(material)
        self._aead = AESGCM(key)
        self._parsed = ParsedRecords()
        self.name = name
        self.chunk_size = chunk_size
        self.max_chunks = max_chunks
        self._lock = threading.Lock()
        self._ended: dict[str, float] = {}

    # -- reading and writing ------------------------------------------------------------------

    def encode(self, record: SessionRecord) -> list[tuple[str, str]]:
        """The ``(cookie name, value)`` pairs holding ``record``, encrypted.

        Raises:
            ValueError: the record needs more than ``max_chunks`` cookies.
        """
        nonce = os.urandom(_NONCE_SIZE)
        plain = zlib.compress(record.to_json().encode(), 9)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plain, self.name.encode())
        text = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")
        chunks = [text[i : i + self.chunk_size] for i in range(0, len(text), self.chunk_size)]
        if len(chunks) > self.max_chunks:
            raise ValueError(
                f"the tokens need {len(chunks)} cookies (max_chunks={self.max_chunks})"
            )
        pairs = [(self.name, f"{len(chunks)}.{chunks[0]}")]
        pairs.extend((f"{self.name}.{i}", chunk) for i, chunk in enumerate(chunks[1:], 1))
        return pairs

    def decode(self, cookies: Mapping[str, str]) -> SessionRecord | None:
        """The record the cookies hold, or ``None``: absent, incomplete, tampered or ended."""
        head = cookies.get(self.name)
        if not head:
            return None
        count_text, _, first = head.partition(".")
        # ASCII digits only, and few: int() refuses "²" and 5,000-digit numbers (a ValueError).
        if not (count_text.isascii() and count_text.isdigit()) or len(count_text) > 3:
            return None
        if not 1 <= int(count_text) <= self.max_chunks:
            return None
        parts = [first]
        for i in range(1, int(count_text)):
            chunk = cookies.get(f"{self.name}.{i}")
            if not chunk:
                return None
            parts.append(chunk)
        text = "".join(parts)
        known = self._parsed.get(text)  # already decrypted and parsed: the same ciphertext
        if known is not None:
            return None if self.is_ended(known) else known
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if sealed[:1] != _VERSION:
                return None
            nonce = sealed[1 : 1 + _NONCE_SIZE]
            plain = self._aead.decrypt(nonce, sealed[1 + _NONCE_SIZE :], self.name.encode())
            record = SessionRecord.from_json(zlib.decompress(plain))
        except (InvalidTag, binascii.Error, ValueError, zlib.error, KeyError, TypeError):
            return None
        self._parsed.keep(text, record)
        return None if self.is_ended(record) else record

    def set_cookie_headers(
        self,
        record: SessionRecord,
        *,
        secure: bool,
        max_age: float | None,
        current: Mapping[str, str] = {},
    ) -> list[tuple[str, str]]:
        """``Set-Cookie`` headers storing ``record`` (and deleting stale chunks in ``current``)."""
        pairs = self.encode(record)
        headers = [("Set-Cookie", self._cookie(n, v, secure, max_age)) for n, v in pairs]
        written = {name for name, _ in pairs}
        headers.extend(
            ("Set-Cookie", self._cookie(name, "", secure, 0))
            for name in self._names(current)
            if name not in written
        )
        return headers

    def clear_cookie_headers(
        self, current: Mapping[str, str], *, secure: bool
    ) -> list[tuple[str, str]]:
        """``Set-Cookie`` headers deleting every token cookie present in ``current``."""
        return [("Set-Cookie", self._cookie(n, "", secure, 0)) for n in self._names(current)]

    def key_of(self, record: SessionRecord) -> str:
        """A stable, non-secret name for the session ``record`` belongs to (for single flight)."""
        token = record.tokens.refresh_token or record.tokens.access_token
        return "cookie:" + hashlib.sha256(token.encode()).hexdigest()

    # -- back-channel logout ------------------------------------------------------------------

    def end(self, *, sid: str | None = None, sub: str | None = None, until: float) -> None:
        """Refuse cookies of session ``sid`` (or user ``sub``) in this process until ``until``.

        The cookies themselves stay in the browser until it next talks to the app.
        """
        now = time.time()
        with self._lock:
            self._ended = {k: v for k, v in self._ended.items() if v > now}
            if len(self._ended) >= _MAX_ENDED:
                self._ended.pop(next(iter(self._ended)))
            if sid is not None:
                self._ended[f"sid:{sid}"] = until
            elif sub is not None:
                self._ended[f"sub:{sub}"] = until

    def is_ended(self, record: SessionRecord) -> bool:
        """Whether a back-channel logout ended the session of ``record``."""
        now = time.time()
        ended = self._ended
        return (record.sid is not None and ended.get(f"sid:{record.sid}", 0) > now) or ended.get(
            f"sub:{record.sub}", 0
        ) > now

    # -- internals ----------------------------------------------------------------------------

    def _names(self, cookies: Mapping[str, str]) -> Sequence[str]:
        prefix = self.name + "."
        return [
            n
            for n in cookies
            if n == self.name or (n.startswith(prefix) and n[len(prefix) :].isdigit())
        ]

    def _cookie(self, name: str, value: str, secure: bool, max_age: float | None) -> str:
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if max_age is not None:
            seconds = max(int(max_age), 0)
            parts.append(f"Max-Age={seconds}")
            parts.append(f"Expires={formatdate(time.time() + seconds, usegmt=True)}")
        if secure:
            parts.append("Secure")
        return "; ".join(parts)
