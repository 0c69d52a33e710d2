"""The engine's settings: its routes and behaviour, readable from a framework's settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config import parse_bool, parse_words
from ..errors import ConfigError

__all__ = ["REFRESH_LINGER", "EngineSettings"]

# A finished refresh keeps answering its session's later requests this long (see SingleFlight).
REFRESH_LINGER = 5.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Routes and behaviour of the engine; every adapter exposes these as its settings."""

    prefix: str = "/kc"
    after_login_url: str = "/"
    after_logout_url: str = "/"
    #: ``redirect``: end the Keycloak session through its end-session page (RP-initiated);
    #: ``server``: end it with a back-channel call; ``local``: forget it in this app only.
    logout_mode: Literal["redirect", "server", "local"] = "redirect"
    #: Logout is POST (CSRF-safe); allow GET only for apps that cannot post.
    allow_get_logout: bool = False
    #: Refresh the access token when it expires within this many seconds.
    refresh_margin: float = 30.0
    #: Longest wait for Keycloak's answer to a silent refresh on the request path (seconds;
    #: the code exchange at login keeps the client's ``read_timeout``).
    refresh_timeout: float = 2.0
    #: After a refresh failed for want of Keycloak (timeout, unreachable, 5xx), no request
    #: tries again for this long (seconds, doubling per failure up to 4 times as long):
    #: valid access tokens keep serving, expired ones get 503 with ``Retry-After``.
    refresh_backoff: float = 5.0
    session_key: str = "kc"
    max_pending_logins: int = 5
    login_ttl: float = 600.0
    exempt_paths: tuple[str, ...] = ()
    #: Requests let through unprotected by method and path: ``"GET /public/"``,
    #: ``"* /health"`` (a path ending in ``/`` is a prefix; ``*`` is any method). In text
    #: settings, rules are separated by commas.
    exempt_routes: tuple[str, ...] = ()
    #: Let CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``) through
    #: unprotected: browsers send them without credentials, before the real request.
    pass_cors_preflight: bool = True
    scopes: tuple[str, ...] | None = None
    #: Where sessions' tokens live when the app passes no store and no plugin provides one
    #: (``KEYCLOAK_TOKEN_STORE``): ``memory`` (one process only), a ``redis://`` URL, or a
    #: ``redis+sentinel://host:port[,host:port]/service`` URL (a primary behind Sentinel).
    token_store: str = "memory"
    #: The app's public origin (``https://shop.example``): the callback and post-logout URLs,
    #: the logout's same-origin check and ``next`` are built from it, never from the request's
    #: Host. Unset, the request URL is used, as far as the framework's trusted hosts allow.
    public_url: str | None = None
    #: Threads an async adapter's engine keeps for the work that may block (a call to
    #: Keycloak, a shared token store); its own pool, not the event loop's default one.
    io_threads: int = 8
    #: Ask Keycloak's introspection endpoint about every bearer token (answers kept
    #: ``bearer_check_ttl`` seconds): revoked tokens and disabled users are refused within it.
    bearer_introspection: bool = False
    #: Refuse bearer tokens whose Keycloak session a back-channel logout ended (needs a token
    #: store that records it: the Redis store, shared by every worker).
    bearer_refuse_ended_sessions: bool = False
    #: Seconds an online check's answer is kept (the longest a revoked token may still pass).
    bearer_check_ttl: float = 5.0
    #: Online check answers kept at most.
    bearer_check_cache_size: int = 10_000

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ConfigError(
                f"prefix must start with '/' and not end with one, got {self.prefix!r}",
                key="prefix",
            )
        if self.io_threads < 1:
            raise ConfigError(
                f"io_threads must be at least 1, got {self.io_threads}", key="io_threads"
            )
        if self.public_url is not None:
            object.__setattr__(self, "public_url", public_origin(self.public_url))
        for key in ("refresh_timeout", "refresh_backoff"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive", key=key)
        object.__setattr__(self, "exempt_routes", tuple(route_rules(self.exempt_routes)))

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], *, key_prefix: str = "KEYCLOAK_", **overrides: Any
    ) -> EngineSettings:
        """Settings from ``{key_prefix}{FIELD}`` keys of a framework's settings mapping.

        ``KEYCLOAK_PREFIX``, ``KEYCLOAK_LOGOUT_MODE``, ``KEYCLOAK_REFRESH_MARGIN`` ...; values
        may be Python values or strings (environment files), which are parsed by the field's
        type. ``KEYCLOAK_SCOPES`` is left to the client's :class:`~kc_core.Config`.

        Raises:
            ConfigError: a value cannot be read as its setting's type.
        """
        defaults = cls()
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f"{key_prefix}{f.name.upper()}"
            if f.name == "scopes" or key not in values:
                continue
            if f.name == "public_url":
                changes[f.name] = str(values[key]) if values[key] else None
                continue
            if f.name == "exempt_routes" and isinstance(values[key], str):
                changes[f.name] = tuple(r for r in values[key].split(",") if r.strip())
                continue
            try:
                changes[f.name] = _setting_value(values[key], getattr(defaults, f.name))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{key} is not valid: {exc}", key=f.name) from exc
        return cls(**(changes | overrides))

    @classmethod
    def for_seed_middleware(
        cls,
        callback_url: str,
        redirect_uri: str = "/",
        logout_uri: str | None = None,
        *,
        exempt_paths: Iterable[str] = (),
        values: Mapping[str, Any] | None = None,
        key_prefix: str = "KEYCLOAK_",
    ) -> EngineSettings:
        """Settings for the earlier library's ``AuthenticationMiddleware(callback_url=...,
        redirect_uri=..., logout_uri=...)``, which every adapter keeps working.

        The routes live beside ``callback_url`` (``/kc/callback`` → prefix ``/kc``); users
        land on ``redirect_uri`` after login and on ``logout_uri`` after logout, which is
        also reachable by GET because the earlier library's logout was a link.

        Raises:
            ConfigError: ``callback_url``'s path does not look like ``/PREFIX/callback``.
        """
        callback_path = urlsplit(callback_url).path
        suffix = "/callback"
        if not callback_path.endswith(suffix) or callback_path == suffix:
            raise ConfigError(
                f"callback_url's path must look like /PREFIX/callback, got {callback_path!r}",
                key="callback_url",
            )
        return cls.from_mapping(
            values or {},
            key_prefix=key_prefix,
            prefix=callback_path[: -len(suffix)],
            after_login_url=redirect_uri,
            after_logout_url=logout_uri or "/",
            allow_get_logout=True,
            exempt_paths=tuple(exempt_paths),
        )

    @property
    def login_path(self) -> str:
        """Where a browser starts a login (``?next=`` names the page to return to)."""
        return f"{self.prefix}/login"

    @property
    def callback_path(self) -> str:
        """Where Keycloak sends the browser back (register it as a redirect URI)."""
        return f"{self.prefix}/callback"

    @property
    def logout_path(self) -> str:
        """Where the app's logout form posts."""
        return f"{self.prefix}/logout"

    @property
    def backchannel_logout_path(self) -> str:
        """Where Keycloak posts logout tokens (the client's back-channel logout URL)."""
        return f"{self.prefix}/backchannel-logout"


def _setting_value(value: Any, default: Any) -> Any:
    """``value`` as the type of the setting's ``default``; strings are parsed."""
    if not isinstance(value, str):
        if isinstance(default, tuple) and isinstance(value, list | tuple | set | frozenset):
            return tuple(value)
        return value
    if isinstance(default, bool):
        return parse_bool(value)
    if isinstance(default, int | float):
        return type(default)(value)
    if isinstance(default, tuple) or default is None:
        return parse_words(value)
    return value


def public_origin(url: str, key: str = "public_url") -> str:
    """``url`` as an origin (``https://host[:port]``), or a :class:`ConfigError`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} must be an http(s) URL with a host, got {url!r}", key=key)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(
            f"{key} names only the app's origin (scheme, host, port), got {url!r}", key=key
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def route_rules(rules: Iterable[str]) -> list[str]:
    """``exempt_routes`` written as ``METHOD /path``, normalised (method upper-case).

    Raises:
        ConfigError: a rule is not a method (or ``*``) and a path starting with ``/``.
    """
    normalised = []
    for rule in rules:
        method, _, path = rule.strip().partition(" ")
        path = path.strip()
        if not method or not (method == "*" or method.isalpha()) or not path.startswith("/"):
            raise ConfigError(
                f"exempt_routes rules look like 'GET /public/' or '* /health', got {rule!r}",
                key="exempt_routes",
            )
        normalised.append(f"{method.upper()} {path}")
    return normalised
