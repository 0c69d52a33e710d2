"""Every error kc raises.

The hierarchy::

    KeycloakError
    ├── ConfigError                  missing or contradictory settings
    ├── KeycloakUnreachable          no answer: refused, DNS, TLS, timeout
    ├── KeycloakResponseError        Keycloak answered with an error status
    │   └── OAuthError               an OAuth/OIDC ``error`` answer (invalid_grant, ...)
    │       └── DeviceFlowError      the device flow ended (access_denied, expired_token)
    ├── TokenStoreUnavailable        the server-side token store (Redis) did not answer
    ├── LoginError                   a login round trip cannot be completed safely
    │   ├── StateMismatch            unknown, reused or forged ``state``
    │   └── IssuerMismatch           the callback's ``iss`` names another server (RFC 9207)
    └── TokenError                   a token is rejected; one subclass per reason
        ├── MalformedToken
        ├── DisallowedAlgorithm
        ├── UnknownKey
        ├── BadSignature
        ├── TokenExpired
        ├── TokenNotYetValid
        ├── TokenIssuedInFuture
        ├── WrongIssuer
        ├── WrongAudience
        ├── WrongAuthorizedParty
        ├── WrongTokenType
        ├── NonceMismatch
        ├── AtHashMismatch
        ├── MissingClaim
        ├── SubjectMismatch          userinfo names another user than the tokens
        └── TokenInactive            Keycloak says the token no longer counts (online checks)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AtHashMismatch",
    "BadSignature",
    "ConfigError",
    "DeviceFlowError",
    "DisallowedAlgorithm",
    "IssuerMismatch",
    "KeycloakError",
    "KeycloakResponseError",
    "KeycloakUnreachable",
    "LoginError",
    "MalformedToken",
    "MissingClaim",
    "NonceMismatch",
    "OAuthError",
    "StateMismatch",
    "SubjectMismatch",
    "TokenError",
    "TokenExpired",
    "TokenInactive",
    "TokenIssuedInFuture",
    "TokenNotYetValid",
    "TokenStoreUnavailable",
    "UnknownKey",
    "WrongAudience",
    "WrongAuthorizedParty",
    "WrongIssuer",
    "WrongTokenType",
]


class KeycloakError(Exception):
    """Base class of every error raised by kc."""


class ConfigError(KeycloakError):
    """A setting is missing or contradicts another one.

    ``key`` names the setting; ``looked_in`` lists every place that was searched.
    """

    def __init__(self, message: str, *, key: str, looked_in: Iterable[str] = ()) -> None:
        self.key = key
        self.looked_in = tuple(looked_in)
        where = f" (looked in: {', '.join(self.looked_in)})" if self.looked_in else ""
        super().__init__(f"{message}{where}")


class KeycloakUnreachable(KeycloakError):
    """Keycloak did not answer: connection refused, name resolution, TLS failure or timeout."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class KeycloakResponseError(KeycloakError):
    """Keycloak answered, with an error status.

    ``status`` is the HTTP status; ``error`` and ``error_description`` are Keycloak's own
    fields when the body carried them (``None`` otherwise).
    """

    def __init__(
        self,
        status: int,
        error: str | None = None,
        error_description: str | None = None,
        *,
        url: str = "",
    ) -> None:
        self.status = status
        self.error = error
        self.error_description = error_description
        self.url = url
        detail = error or "http_error"
        if error_description:
            detail = f"{detail}: {error_description}"
        super().__init__(f"Keycloak answered {status} ({detail})")


class OAuthError(KeycloakResponseError):
    """An OAuth 2.0 / OpenID Connect error answer, such as ``invalid_grant``."""


class DeviceFlowError(OAuthError):
    """The device authorization flow ended without tokens (``access_denied``, ``expired_token``)."""


class TokenStoreUnavailable(KeycloakError):
    """The token store did not answer: connection refused, timeout, read-only replica.

    The engine answers 503 and keeps the browser's session, as when Keycloak is down.
    ``store`` names the store (host and port, never a password).
    """

    def __init__(self, message: str, *, store: str) -> None:
        self.store = store
        super().__init__(message)


class LoginError(KeycloakError):
    """A login round trip cannot be completed safely."""


class StateMismatch(LoginError):
    """The ``state`` of a callback is unknown, was already used, or does not match."""


class IssuerMismatch(LoginError):
    """The authorization response's ``iss`` is missing or not this client's server.

    RFC 9207: a login answered by another authorization server (a mix-up across realms or
    tenants) must not be redeemed here.
    """


class TokenError(KeycloakError):
    """A token was rejected. Subclasses name the exact reason."""


class MalformedToken(TokenError):
    """The token is not a well-formed compact JWS with JSON header and claims."""


class DisallowedAlgorithm(TokenError):
    """The ``alg`` is ``none``, not on the allow-list, or does not fit the key."""


class UnknownKey(TokenError):
    """No key with the token's ``kid`` is known, even after refetching the key set."""


class BadSignature(TokenError):
    """The signature does not verify with the key."""


class TokenExpired(TokenError):
    """``exp`` is in the past (beyond the leeway)."""


class TokenNotYetValid(TokenError):
    """``nbf`` is in the future (beyond the leeway)."""


class TokenIssuedInFuture(TokenError):
    """``iat`` is in the future (beyond the leeway)."""


class WrongIssuer(TokenError):
    """``iss`` is not one of the accepted issuers."""


class WrongAudience(TokenError):
    """The token is not meant for this app: ``aud`` lacks the expected audience (and, for an
    access token, ``azp`` is neither this client nor an authorized party).

    ``audiences`` and ``azp`` are what the token carried (empty / ``None`` when unknown).
    """

    def __init__(
        self, message: str, *, audiences: Iterable[str] = (), azp: str | None = None
    ) -> None:
        super().__init__(message)
        self.audiences = tuple(audiences)
        self.azp = azp


class WrongAuthorizedParty(TokenError):
    """``azp`` is not the expected client."""


class WrongTokenType(TokenError):
    """The ``typ`` (claim or header) is not the kind of token expected here."""


class NonceMismatch(TokenError):
    """The ID token's ``nonce`` is missing or differs from the one sent at login."""


class AtHashMismatch(TokenError):
    """The ID token's ``at_hash`` does not match the access token it came with."""


class MissingClaim(TokenError):
    """A claim required for this kind of token is absent or has the wrong JSON type."""


class SubjectMismatch(TokenError):
    """The userinfo answer's ``sub`` is not the user the tokens belong to (OIDC Core 5.3.2)."""


class TokenInactive(TokenError):
    """A valid-looking token Keycloak no longer honours: introspection answered
    ``active: false`` (revoked, user disabled, session ended) or its session ended by a
    back-channel logout."""
