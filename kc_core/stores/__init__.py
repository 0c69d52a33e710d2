"""Server-side token stores: where a browser session's tokens live.

The browser's session holds only an opaque key; the tokens are kept here. A store must be
safe to share between threads. Implement :class:`TokenStore` to add your own (return it
from the ``kc_token_store`` hook or pass it to the engine).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..oidc import TokenSet

__all__ = ["RefreshLocks", "SessionRecord", "TokenStore"]

_PARSED_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the store keeps for one logged-in browser session.

    ``sid`` is Keycloak's session id (from the ID token), ``sub`` the user: a back-channel
    logout names one of them and ends every record that carries it.
    """

    tokens: TokenSet
    sub: str
    sid: str | None = None

    def to_json(self) -> str:
        """Serialise (tokens as Keycloak sent them, plus the instants computed at receipt)."""
        return json.dumps(
            {
                "raw": dict(self.tokens.raw),
                "expires_at": self.tokens.expires_at,
                "refresh_expires_at": self.tokens.refresh_expires_at,
                "id_claims": None if self.tokens.id_claims is None else dict(self.tokens.id_claims),
                "sub": self.sub,
                "sid": self.sid,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionRecord:
        """The inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        base = TokenSet.from_response(data["raw"], id_claims=data.get("id_claims"))
        tokens = TokenSet(
            access_token=base.access_token,
            token_type=base.token_type,
            expires_at=float(data["expires_at"]),
            refresh_token=base.refresh_token,
            refresh_expires_at=data.get("refresh_expires_at"),
            id_token=base.id_token,
            scopes=base.scopes,
            session_state=base.session_state,
            id_claims=base.id_claims,
            raw=base.raw,
        )
        return cls(tokens=tokens, sub=str(data["sub"]), sid=data.get("sid"))


class TokenStore(Protocol):
    """Where the engine keeps each browser session's tokens, by opaque key."""

    def get(self, key: str) -> SessionRecord | None:
        """The record for ``key``, or ``None`` if it never existed, expired or was ended."""
        ...

    def set(self, key: str, record: SessionRecord, ttl: float | None) -> None:
        """Keep ``record`` under ``key`` for ``ttl`` seconds (``None``: until deleted)."""
        ...

    def delete(self, key: str) -> None:
        """Forget ``key`` (no error if absent)."""
        ...

    def delete_matching(self, *, sid: str | None = None, sub: str | None = None) -> int:
        """End every record of Keycloak session ``sid`` (or, without sid, of user ``sub``).

        Returns how many records were removed. Called by the back-channel logout endpoint:
        with a shared store, this ends the session in every app process.
        """
        ...


@runtime_checkable
class RefreshLocks(Protocol):
    """A store shared by several processes that can make one session's refresh exclusive.

    With it, one refresh per session reaches Keycloak across every process sharing the
    store; the others wait for the record it writes. Without it, refreshes are single
    flight per process only (enough for :class:`~kc_core.stores.memory.MemoryTokenStore`).
    """

    def lock_refresh(self, key: str, ttl: float) -> str | None:
        """Take ``key``'s refresh lock for at most ``ttl`` seconds; a token to release it
        with, or ``None`` while another holder has it."""
        ...

    def unlock_refresh(self, key: str, token: str) -> None:
        """Release the lock taken with ``token`` (nothing if it expired or was taken over)."""
        ...


class ParsedRecords:
    """Records already parsed, by their exact serialized form (bounded).

    A session's record changes only at login and refresh, but stores that serialize it
    (Redis, cookies) read it on every request: parsing each distinct form once keeps JSON
    (and, for cookies, decryption) off the per-request path.
    """

    def __init__(self, limit: int = _PARSED_LIMIT) -> None:
        self._records: dict[str | bytes, SessionRecord] = {}
        self._limit = limit

    def get(self, serialized: str | bytes) -> SessionRecord | None:
        """The record parsed from ``serialized`` before, if any."""
        return self._records.get(serialized)

    def keep(self, serialized: str | bytes, record: SessionRecord) -> SessionRecord:
        """Remember ``record`` as the parse of ``serialized``; returns ``record``."""
        if len(self._records) >= self._limit:
            self._records.clear()
        self._records[serialized] = record
        return record
