"""Where a browser session's tokens live, behind one protocol: a server-side
:class:`~kc_core.stores.TokenStore` (the framework session holds a key) or encrypted
cookies (:class:`~kc_core.stores.cookie.CookieTokenStore`)."""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from ..oidc import TokenSet
from ..stores import RefreshLocks, SessionRecord
from ..stores.cookie import CookieTokenStore
from ..stores.memory import MemoryTokenStore
from .context import MEMO_SIZE, Call, Tenant, note_refusal, record_ttl
from .settings import EngineSettings

_log = logging.getLogger("kc_core.engine")
_COOKIE_LIFE = 86_400 * 30.0  # how long an ended session's cookies may still come back


@dataclass(slots=True)
class StoredSession:
    """A browser session's tokens as found for one request."""

    key: str
    record: SessionRecord


class SessionBackend(Protocol):
    """How the engine keeps, finds and ends a browser session's tokens.

    Methods that answer the browser add their ``Set-Cookie`` headers to ``call.headers``;
    every method may raise :class:`~kc_core.errors.TokenStoreUnavailable`.
    """

    def load(self, call: Call) -> StoredSession | None:
        """The request's session, or ``None`` (absent, ended, tampered with)."""
        ...

    def forget_missing(self, call: Call) -> None:
        """:meth:`load` found nothing: drop what the request still carries of a session."""
        ...

    def save(self, call: Call, record: SessionRecord) -> None:
        """Keep a new login's tokens (a new key at every login: no session fixation)."""
        ...

    def end(self, call: Call, key: str | None) -> None:
        """Forget the request's session here (its tokens and the pointer to them)."""
        ...

    def latest(self, call: Call, found: StoredSession) -> SessionRecord | None:
        """The session's newest record before a refresh (another process may have
        refreshed it), or ``None`` if it ended meanwhile."""
        ...

    def keep_refreshed(self, call: Call, key: str, record: SessionRecord) -> None:
        """Keep refreshed tokens (once per refresh, by the request that ran it)."""
        ...

    def refresh_locks(self, call: Call) -> RefreshLocks | None:
        """What makes a refresh exclusive across processes, or ``None`` (this process only)."""
        ...

    def send_refreshed(self, call: Call, record: SessionRecord) -> None:
        """Give refreshed tokens to the browser (every request sharing the refresh)."""
        ...

    def end_matching(self, tenant: Tenant, sid: str | None, sub: str | None, now: float) -> int:
        """A back-channel logout: end every session of ``sid`` (or user ``sub``)."""
        ...

    def refuse_copies(self, call: Call, record: SessionRecord) -> None:
        """A logout: copies of the session saved before it must not work afterwards."""
        ...


class ServerSessions:
    """Tokens in the tenant's server-side store; the framework session holds their key."""

    def __init__(self, settings: EngineSettings) -> None:
        self.session_key = settings.session_key
        # Store keys this engine created, to tell a session created by another process
        # (the memory store misused with several workers) from one that ended here.
        self.issued_keys: OrderedDict[str, None] = OrderedDict()

    def load(self, call: Call) -> StoredSession | None:
        data = call.session().get(self.session_key)
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return None
        key = data["key"]
        record = call.tenant.store.get(key)
        return None if record is None else StoredSession(key, record)

    def forget_missing(self, call: Call) -> None:
        if self.session_key in call.session():
            # Ended elsewhere (back-channel logout, expiry): forget it here too.
            self._note_lost_session(call)
            self.end(call, None)

    def save(self, call: Call, record: SessionRecord) -> None:
        session = call.session()
        store = call.tenant.store
        old = session.get(self.session_key)
        if isinstance(old, dict) and isinstance(old.get("key"), str):
            store.delete(old["key"])
        key = secrets.token_urlsafe(32)
        store.set(key, record, record_ttl(record.tokens))
        self.issued_keys[key] = None
        if len(self.issued_keys) > MEMO_SIZE * 16:
            self.issued_keys.popitem(last=False)
        call.adapter.rotate_session(call.request)
        call.session()[self.session_key] = {"key": key, "tenant": call.tenant.name}

    def end(self, call: Call, key: str | None) -> None:
        if key is not None:
            call.tenant.store.delete(key)
        call.session().pop(self.session_key, None)

    def latest(self, call: Call, found: StoredSession) -> SessionRecord | None:
        return call.tenant.store.get(found.key)

    def keep_refreshed(self, call: Call, key: str, record: SessionRecord) -> None:
        call.tenant.store.set(key, record, record_ttl(record.tokens))

    def refresh_locks(self, call: Call) -> RefreshLocks | None:
        store = call.tenant.store
        return store if isinstance(store, RefreshLocks) else None

    def send_refreshed(self, call: Call, record: SessionRecord) -> None:
        return None  # the browser holds only the key, which stays

    def end_matching(self, tenant: Tenant, sid: str | None, sub: str | None, now: float) -> int:
        return tenant.store.delete_matching(sid=sid, sub=sub)

    def refuse_copies(self, call: Call, record: SessionRecord) -> None:
        return None  # the record is gone from the store: a copied key finds nothing

    def _note_lost_session(self, call: Call) -> None:
        """The session points at tokens the store does not have: say why, if it is a fault."""
        session = call.session()
        pointer = session.get(self.session_key)
        key = pointer.get("key") if isinstance(pointer, dict) else None
        if not isinstance(call.tenant.store, MemoryTokenStore) or key in self.issued_keys:
            return  # ended here, or by another process sharing a real store: no fault
        reason = (
            "its tokens are not in this process's memory token store: another process "
            "created the session (the memory store serves one process only; with several "
            "worker processes use the Redis store, see docs/token-stores.md) or the app "
            "restarted"
        )
        _log.warning("a session was lost right after login: %s", reason)
        note_refusal(session, reason)


class CookieSessions:
    """Tokens in the browser, encrypted in chunked cookies."""

    def __init__(self, cookies: CookieTokenStore) -> None:
        self.cookies = cookies

    def load(self, call: Call) -> StoredSession | None:
        record = self.cookies.decode(call.adapter.cookies(call.request))
        if record is None or self._logged_out(call.tenant, record):
            return None
        return StoredSession(self.cookies.key_of(record), record)

    def forget_missing(self, call: Call) -> None:
        # Tampered, incomplete or ended cookies: delete what the browser sent.
        self.end(call, None)

    def save(self, call: Call, record: SessionRecord) -> None:
        self.send_refreshed(call, record)

    def end(self, call: Call, key: str | None) -> None:
        adapter, request = call.adapter, call.request
        call.headers.extend(
            self.cookies.clear_cookie_headers(
                adapter.cookies(request), secure=adapter.is_secure(request)
            )
        )

    def latest(self, call: Call, found: StoredSession) -> SessionRecord | None:
        return found.record  # the browser sent it with this very request

    def keep_refreshed(self, call: Call, key: str, record: SessionRecord) -> None:
        return None  # kept by the browser: see send_refreshed

    def refresh_locks(self, call: Call) -> RefreshLocks | None:
        return None  # the refreshed record goes to one browser response: nothing to share

    def send_refreshed(self, call: Call, record: SessionRecord) -> None:
        adapter, request = call.adapter, call.request
        call.headers.extend(
            self.cookies.set_cookie_headers(
                record,
                secure=adapter.is_secure(request),
                max_age=record_ttl(record.tokens),
                current=adapter.cookies(request),
            )
        )

    def end_matching(self, tenant: Tenant, sid: str | None, sub: str | None, now: float) -> int:
        # Cookies live in browsers: refuse them from now on, for as long as they may live.
        self.cookies.end(sid=sid, sub=sub, until=now + _COOKIE_LIFE)
        return tenant.store.delete_matching(sid=sid, sub=sub)

    def refuse_copies(self, call: Call, record: SessionRecord) -> None:
        """Refuse every cookie of ``record``'s session issued until now.

        A copy of the cookie saved before logout would otherwise keep working until its
        tokens expire. The mark lives in the tenant's token store (this process's memory, or
        the shared store a ``kc_token_store`` hook gives) for as long as such a cookie lives.
        """
        now = time.time()
        ttl = record_ttl(record.tokens) or _COOKIE_LIFE
        mark = TokenSet(access_token="", token_type="logged-out", expires_at=now)
        call.tenant.store.set(self._mark_key(record), SessionRecord(mark, sub=""), ttl)

    def _logged_out(self, tenant: Tenant, record: SessionRecord) -> bool:
        """Whether a logout refused ``record`` (see :meth:`refuse_copies`)."""
        mark = tenant.store.get(self._mark_key(record))
        if mark is None:
            return False
        # A later login into the same Keycloak session (a local logout) is not refused; this
        # app's own clock dates both (a token's iat has whole seconds and Keycloak's clock).
        tokens = record.tokens
        received_at = tokens.expires_at - float(tokens.raw.get("expires_in") or 0)
        return received_at <= mark.tokens.expires_at

    def _mark_key(self, record: SessionRecord) -> str:
        # By Keycloak session when known: a copy saved before a refresh has other tokens.
        if record.sid is not None:
            return f"kc-logged-out:sid:{record.sid}"
        return f"kc-logged-out:{self.cookies.key_of(record)}"
