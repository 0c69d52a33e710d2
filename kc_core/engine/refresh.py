"""Silent refresh: new tokens for a session about to expire, one refresh per session at a
time, without ever losing the session because Keycloak is down."""

from __future__ import annotations

import logging

from .. import metrics
from ..errors import KeycloakError, OAuthError, TokenError
from ..plugins import Plugins
from ..singleflight import SingleFlight
from ..stores import SessionRecord
from .context import Call
from .sessions import SessionBackend, StoredSession
from .settings import REFRESH_LINGER

_log = logging.getLogger("kc_core.engine")


class Unavailable(Exception):
    """Keycloak or the token store is needed and unreachable; the session is kept."""

    def __init__(self, error: KeycloakError) -> None:
        self.error = error


class Refresher:
    """Refreshes sessions' tokens (single flight per session key)."""

    def __init__(self, sessions: SessionBackend, plugins: Plugins) -> None:
        self.sessions = sessions
        self.plugins = plugins
        self.flights: SingleFlight[SessionRecord | None] = SingleFlight(linger=REFRESH_LINGER)

    def refresh(self, call: Call, found: StoredSession) -> SessionRecord | None:
        """New tokens for an expiring session; ``None`` when the session is dead.

        One refresh per session at a time (single flight); requests arriving meanwhile, or
        shortly after, share its result.

        Raises:
            Unavailable: Keycloak is unreachable and the access token has expired.
        """
        seen = found.record.tokens
        if seen.refresh_token is None:
            return found.record if not seen.expires_within(0) else None
        sessions = self.sessions

        def refresh() -> SessionRecord | None:
            current = sessions.latest(call, found)
            if current is None:
                return None
            if current.tokens.access_token != seen.access_token:
                return current  # another process refreshed it meanwhile
            assert current.tokens.refresh_token is not None
            new_tokens = call.tenant.client.refresh(current.tokens.refresh_token)
            updated = SessionRecord(new_tokens, sub=current.sub, sid=current.sid)
            sessions.keep_refreshed(call, found.key, updated)
            metrics.record("kc_refreshes_total", result="refreshed")
            self.plugins.after_refresh(call.request, new_tokens)
            return updated

        try:
            record = self.flights.run(found.key, refresh)
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
            raise Unavailable(exc) from exc
        if record is not None:
            sessions.send_refreshed(call, record)
        return record
