"""Online bearer checks (opt-in): a :class:`~.bearer.BearerVerifier` that asks Keycloak's
current state, not only the token's signature, with a short bounded cache of the answers.

Two checks, each optional, after the local JWT validation has passed:

- **introspection** (RFC 7662): Keycloak says whether the token still counts, so a revoked
  token, a disabled user or an ended session is refused within ``ttl`` seconds;
- **ended sessions**: the token's ``sid`` was ended by a back-channel logout, as recorded
  by the tenant's token store (the Redis store: in every worker sharing it).

Turn them on with :attr:`EngineSettings.bearer_introspection` and
:attr:`EngineSettings.bearer_refuse_ended_sessions` (or pass
``Engine(verifier=OnlineVerifier(...))``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError, OAuthError, TokenInactive
from ..singleflight import SingleFlight
from .context import Tenant

__all__ = ["EndedSessions", "OnlineVerifier"]

_log = logging.getLogger("kc_core.engine")

_NOT_ACTIVE = (
    "Keycloak's introspection says the token is not active (revoked, user disabled or "
    "session ended; Keycloak 26.6.2+ also says so when this client is not in the token's aud)"
)
_ENDED = "the token's Keycloak session ended (back-channel logout)"


@runtime_checkable
class EndedSessions(Protocol):
    """A token store that remembers Keycloak sessions ended by back-channel logout
    (:class:`~kc_core.stores.redis.RedisTokenStore`, and the memory store for one process)."""

    def session_ended(self, sid: str) -> bool:
        """Whether a back-channel logout ended Keycloak session ``sid``."""
        ...


class _Verdict:
    """An online answer: the claims admitted (``None`` when refused) until ``until``."""

    __slots__ = ("claims", "refusal", "tenant", "until")

    def __init__(
        self, until: float, tenant: Tenant, claims: Mapping[str, Any] | None, refusal: str | None
    ) -> None:
        self.until = until
        self.tenant = tenant
        self.claims = claims
        self.refusal = refusal


class OnlineVerifier:
    """Validates a bearer token locally, then asks Keycloak (introspection) and/or the
    token store (ended sessions) about it; each answer is kept ``ttl`` seconds.

    A token whose answer is cached costs a dictionary lookup and a clock read more than the
    local path (see ``benchmarks/bench_online.py``); an answer older than ``ttl`` is asked
    again, once for all concurrent requests carrying that token.

    Introspection needs a confidential client whose id the token's ``aud`` names (the API's
    own client): since 26.6.2 Keycloak answers ``active: false`` to every other client, even
    the one the token was issued to (``azp``).

    Args:
        introspect: ask Keycloak's introspection endpoint.
        ended_sessions: refuse tokens whose ``sid`` a back-channel logout ended (the tenant's
            store must implement :class:`EndedSessions`).
        ttl: seconds an answer is kept: the longest a revoked token may still pass.
        max_entries: answers kept at most (the oldest go first).

    Raises (from :meth:`verify`):
        TokenError: local validation failed, or :class:`~kc_core.errors.TokenInactive`.
        KeycloakError: Keycloak or the token store is unreachable (a 503).
    """

    def __init__(
        self,
        *,
        introspect: bool = True,
        ended_sessions: bool = False,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ConfigError(
                "the online check's ttl must be >= 0 and max_entries >= 1", key="bearer_check_ttl"
            )
        self.introspect = introspect
        self.ended_sessions = ended_sessions
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._verdicts: dict[str, _Verdict] = {}
        self._flight: SingleFlight[_Verdict] = SingleFlight()

    def check_store(self, tenant: Tenant) -> None:
        """Refuse a tenant whose store cannot tell ended sessions, at start-up.

        Raises:
            ConfigError: ``ended_sessions`` is on and the store lacks ``session_ended``.
        """
        if self.ended_sessions and not isinstance(tenant.store, EndedSessions):
            raise ConfigError(
                f"bearer_refuse_ended_sessions needs a token store that records ended sessions "
                f"(the Redis store); tenant {tenant.name!r} has {type(tenant.store).__name__}",
                key="bearer_refuse_ended_sessions",
            )

    def verify(self, tenant: Tenant, token: str) -> Mapping[str, Any]:
        """The token's claims, if it passes locally and online (see the class)."""
        claims = tenant.validate(token)
        verdict = self._verdicts.get(token)
        if verdict is None or verdict.until <= self._clock() or verdict.tenant is not tenant:
            verdict = self._flight.run(token, lambda: self._ask(tenant, token, claims))
        if verdict.refusal is not None:
            raise TokenInactive(verdict.refusal)
        return claims

    def cached(self, tenant: Tenant, token: str) -> Mapping[str, Any] | None:
        """The claims of a token admitted less than ``ttl`` seconds ago (and not expired
        since), with no I/O."""
        verdict = self._verdicts.get(token)
        if verdict is None or verdict.until <= self._clock() or verdict.tenant is not tenant:
            return None
        return verdict.claims

    def _ask(self, tenant: Tenant, token: str, claims: Mapping[str, Any]) -> _Verdict:
        refusal = None
        sid = claims.get("sid")
        store = tenant.store
        if self.ended_sessions and isinstance(sid, str) and isinstance(store, EndedSessions):
            refusal = _ENDED if store.session_ended(sid) else None
        if refusal is None and self.introspect:
            try:
                answer = tenant.client.introspect(token, token_type_hint="access_token")
            except OAuthError as exc:
                # invalid_client and friends: this app's setup, not the caller's token.
                _log.warning("token introspection refused this client: %s", exc)
                raise
            if answer.get("active") is not True:
                refusal = _NOT_ACTIVE
        now = self._clock()
        until = now + self.ttl
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            # The answer never outlives the token (exp as the validator counts it).
            left = exp + tenant.client.config.leeway - time.time()
            until = min(until, now + left)
        admitted = claims if refusal is None else None
        verdict = _Verdict(until, tenant, admitted, refusal)
        with self._lock:
            verdicts = self._verdicts
            verdicts.pop(token, None)
            while len(verdicts) >= self.max_entries:
                del verdicts[next(iter(verdicts))]
            verdicts[token] = verdict
        return verdict
