"""Bearer tokens: reading ``Authorization: Bearer``, and the verifier seam that judges the
token (local JWT validation; :mod:`.online` adds introspection and ended-session checks;
DPoP proof checks can plug in here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .context import MEMO_SIZE, Tenant

#: Characters of an ``Authorization`` value that key its memo entry: a token's signature
#: ends it, so distinct tokens differ there. A server hands every request a new string, whose
#: 1-2 KB hash a look-up by the whole value would compute each time; the tail's costs little.
_TAIL = 32


class BearerVerifier(Protocol):
    """Judges a bearer token for a tenant."""

    def verify(self, tenant: Tenant, token: str) -> Mapping[str, Any]:
        """The token's validated claims.

        Raises:
            TokenError: the token is refused (the reason goes into the 401's challenge).
            KeycloakError: Keycloak is needed and unreachable (a 503).
        """
        ...

    def cached(self, tenant: Tenant, token: str) -> Mapping[str, Any] | None:
        """The claims of a token verified before and still valid, with no I/O; else ``None``."""
        ...


class JwtVerifier:
    """Validates a JWT access token locally against the realm's signing keys (cached)."""

    def verify(self, tenant: Tenant, token: str) -> Mapping[str, Any]:
        return tenant.validate(token)

    def cached(self, tenant: Tenant, token: str) -> Mapping[str, Any] | None:
        validator = tenant.ready_validator
        return None if validator is None else validator.cached(token)


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else ``None``."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class BearerTokens:
    """Bearer tokens by ``Authorization`` header, verified through a :class:`BearerVerifier`."""

    __slots__ = ("_tokens", "jwt", "verifier")

    def __init__(self, verifier: BearerVerifier) -> None:
        self.verifier = verifier
        #: Whether tokens are judged by the default verifier (local JWT validation), whose
        #: cache the engine reads inline and whose first-seen tokens it validates itself.
        self.jwt = type(verifier) is JwtVerifier
        # The tail of an Authorization value -> that value and its token.
        self._tokens: dict[str, tuple[str, str]] = {}

    def token_of(self, authorization: str) -> str | None:
        """The header's bearer token, else ``None``.

        Remembered per header value: the same token string each time, so its (1-2 KB) hash
        is computed once, not on every request's cache look-up.
        """
        tail = authorization[-_TAIL:]
        hit = self._tokens.get(tail)
        if hit is not None and hit[0] == authorization:
            return hit[1]
        token = bearer_token(authorization)
        if token is None:
            return None
        if len(self._tokens) >= MEMO_SIZE:
            self._tokens.clear()
        self._tokens[tail] = (authorization, token)  # a value with the same tail: replaced
        return token

    def seen(self, authorization: str) -> str | None:
        """The token of a header value :meth:`token_of` answered before, else ``None``."""
        hit = self._tokens.get(authorization[-_TAIL:])
        return hit[1] if hit is not None and hit[0] == authorization else None

    def cached(self, tenant: Tenant, authorization: str) -> tuple[str, Mapping[str, Any]] | None:
        """The header's token and its claims, if verified before (no I/O), else ``None``."""
        token = self.token_of(authorization)
        if token is None:
            return None
        if self.jwt:
            validator = tenant.ready_validator
            claims = None if validator is None else validator.cached(token)
        else:
            claims = self.verifier.cached(tenant, token)
        return None if claims is None else (token, claims)
