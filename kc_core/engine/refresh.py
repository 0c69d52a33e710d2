"""Silent refresh: new tokens for a session about to expire, one refresh per session at a
time (across processes when the store can lock), without ever losing the session because
Keycloak is down, and without stalling requests while it hangs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .. import metrics
from ..errors import (
    KeycloakError,
    KeycloakResponseError,
    KeycloakUnreachable,
    OAuthError,
    TokenError,
    TokenStoreUnavailable,
)
from ..plugins import Plugins
from ..singleflight import SingleFlight
from ..stores import SessionRecord
from .context import Call, Tenant
from .sessions import SessionBackend, StoredSession
from .settings import REFRESH_LINGER, EngineSettings

_log = logging.getLogger("kc_core.engine")
# How often a process waiting for another one's refresh looks at the store.
_LOCK_POLL = 0.05
# The refresh lock outlives the refresh call by this much (the store write after it).
_LOCK_SLACK = 1.0
# A back-off grows to at most this many times its first period.
_BACKOFF_GROWTH = 4


class Unavailable(Exception):
    """Keycloak or the token store is needed and unreachable; the session is kept.

    ``retry_after``: seconds until a retry may succeed (the back-off left), if known.
    """

    def __init__(self, error: KeycloakError, retry_after: float | None = None) -> None:
        self.error = error
        self.retry_after = retry_after


class Backoff:
    """A circuit breaker for one Keycloak: after a refresh failed for want of an answer,
    no request of this process asks again until the back-off has passed; then one
    request probes while the others keep being answered without Keycloak."""

    def __init__(
        self, period: float, probe: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._period = period
        self._probe = probe
        self._clock = clock
        self._failures = 0
        self._until = 0.0
        #: The failure that opened the breaker, while it is open.
        self.error: KeycloakError | None = None

    def blocked_for(self) -> float:
        """Seconds until Keycloak may be asked again; 0 lets this caller ask (when the
        breaker was open, this caller is the one probe and the others stay blocked)."""
        with self._lock:
            now = self._clock()
            left = self._until - now
            if left > 0:
                return left
            if self._failures:
                self._until = now + self._probe
            return 0.0

    def remaining(self) -> float:
        """Seconds until Keycloak may be asked again (0 when it may be now)."""
        return max(0.0, self._until - self._clock())

    def failed(self, error: KeycloakError) -> None:
        """Keycloak did not answer (timeout, unreachable, 5xx): open for the next period."""
        with self._lock:
            self._failures += 1
            growth = min(2 ** (self._failures - 1), _BACKOFF_GROWTH)
            self._until = self._clock() + self._period * growth
            self.error = error

    def succeeded(self) -> None:
        """Keycloak answered: close."""
        with self._lock:
            self._failures = 0
            self._until = 0.0
            self.error = None


class Refresher:
    """Refreshes sessions' tokens (single flight per session key, per tenant back-off)."""

    def __init__(
        self, sessions: SessionBackend, plugins: Plugins, settings: EngineSettings | None = None
    ) -> None:
        settings = settings or EngineSettings()
        self.sessions = sessions
        self.plugins = plugins
        self.flights: SingleFlight[SessionRecord | None] = SingleFlight(linger=REFRESH_LINGER)
        self.timeout = settings.refresh_timeout
        self.lock_ttl = settings.refresh_timeout + _LOCK_SLACK
        self._backoff_period = settings.refresh_backoff
        self._backoffs: dict[str, Backoff] = {}
        self._backoffs_lock = threading.Lock()

    def backoff(self, tenant: Tenant) -> Backoff:
        """The circuit breaker of ``tenant``'s Keycloak in this process."""
        with self._backoffs_lock:
            found = self._backoffs.get(tenant.name)
            if found is None:
                probe = self.lock_ttl + _LOCK_SLACK
                found = self._backoffs[tenant.name] = Backoff(self._backoff_period, probe)
            return found

    def refresh(self, call: Call, found: StoredSession) -> SessionRecord | None:
        """New tokens for an expiring session; ``None`` when the session is dead.

        One refresh per session at a time: in this process (single flight), and across
        processes when the session backend offers a refresh lock (the Redis store). Requests
        arriving meanwhile, or shortly after, share its result. While Keycloak is failing
        (see :class:`Backoff`), a still-valid access token keeps serving without a call.

        Raises:
            Unavailable: Keycloak (or the store) is unreachable and the access token has
                expired.
        """
        seen = found.record.tokens
        if seen.refresh_token is None:
            return found.record if not seen.expires_within(0) else None
        backoff = self.backoff(call.tenant)
        blocked = backoff.blocked_for()
        if blocked > 0:
            if not seen.expires_within(0):
                return found.record
            error = backoff.error or KeycloakUnreachable("Keycloak is failing", url="")
            raise Unavailable(error, retry_after=blocked)
        try:
            record = self.flights.run(found.key, lambda: self._lead(call, found, backoff))
        except (OAuthError, TokenError) as exc:
            # The refresh token is dead (session ended in Keycloak, expired): log out here.
            _log.info("refresh refused, ending the session: %s", exc)
            metrics.record("kc_refreshes_total", result="refused")
            return None
        except KeycloakError as exc:
            metrics.record("kc_refreshes_total", result="failed")
            if not seen.expires_within(0):
                _log.warning("refresh failed, the access token is still valid: %s", exc)
                return found.record
            # Never lose the session because Keycloak is down: answer 503, keep everything.
            retry_after = None if isinstance(exc, TokenStoreUnavailable) else backoff.remaining()
            raise Unavailable(exc, retry_after=retry_after or None) from exc
        if record is not None:
            self.sessions.send_refreshed(call, record)
        return record

    def _lead(self, call: Call, found: StoredSession, backoff: Backoff) -> SessionRecord | None:
        """The one refresh of this process for ``found`` (the others wait for it)."""
        try:
            record = self._refresh_exclusively(call, found)
        except KeycloakError as exc:
            if _keycloak_failed(exc):
                backoff.failed(exc)
            raise
        backoff.succeeded()
        return record

    def _refresh_exclusively(self, call: Call, found: StoredSession) -> SessionRecord | None:
        """Refresh under the store's lock, or take the record another process refreshed."""
        sessions = self.sessions
        seen = found.record.tokens.access_token
        locks = sessions.refresh_locks(call)
        deadline = time.monotonic() + self.lock_ttl + _LOCK_SLACK
        waited = False
        while True:
            current = sessions.latest(call, found)
            if current is None:
                return None
            if current.tokens.access_token != seen:
                return current  # another process refreshed it meanwhile
            if locks is None:
                return self._spend(call, found, current)
            token = locks.lock_refresh(found.key, self.lock_ttl)
            if token is not None:
                try:
                    # Another process may have finished between our read and our lock.
                    current = sessions.latest(call, found)
                    if current is None or current.tokens.access_token != seen:
                        return current
                    if waited:
                        # The other process let go without new tokens: its refresh failed,
                        # and trying again now would make this request wait as long again.
                        raise KeycloakError("the refresh of this session failed in another process")
                    return self._spend(call, found, current)
                finally:
                    locks.unlock_refresh(found.key, token)
            if time.monotonic() > deadline:
                raise KeycloakUnreachable(
                    f"another process's refresh of this session did not finish within "
                    f"{self.lock_ttl + _LOCK_SLACK:g} s",
                    url="",
                )
            waited = True
            time.sleep(_LOCK_POLL)

    def _spend(self, call: Call, found: StoredSession, current: SessionRecord) -> SessionRecord:
        """Spend ``current``'s refresh token at Keycloak; keep and announce the new tokens."""
        refresh_token = current.tokens.refresh_token
        if refresh_token is None:
            raise TokenError("the session's record has no refresh token")
        try:
            new_tokens = call.tenant.client.refresh(refresh_token, timeout=self.timeout)
        except OAuthError:
            # Refresh-token rotation: a token another process (or host) just spent is refused,
            # and the tokens it got are in the store. Only if they are not, the session is dead.
            again = self.sessions.latest(call, found)
            if again is not None and again.tokens.refresh_token != refresh_token:
                _log.info("the refresh token was already spent elsewhere; using its new tokens")
                return again
            raise
        updated = SessionRecord(new_tokens, sub=current.sub, sid=current.sid)
        self.sessions.keep_refreshed(call, found.key, updated)
        metrics.record("kc_refreshes_total", result="refreshed")
        self.plugins.after_refresh(call.request, new_tokens)
        return updated


def _keycloak_failed(error: KeycloakError) -> bool:
    """Whether ``error`` says Keycloak did not answer usefully (not a refusal, not the store)."""
    if isinstance(error, KeycloakUnreachable):
        return True
    return isinstance(error, KeycloakResponseError) and error.status >= 500
