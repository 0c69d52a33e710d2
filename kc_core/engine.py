"""The framework-neutral auth engine: login, callback, logout, back-channel logout,
silent refresh and protection, written once for every adapter.

An adapter turns its framework's request into hook calls (see :mod:`kc_core.hookspecs`);
the engine never imports a framework. Endpoints return the framework's own response
objects, built by the adapter's ``kc_response`` / ``kc_redirect`` hooks.

Network calls happen only on the login round trip, on logout, on a silent refresh and on
the first sight of a signing key; protecting a request with a token seen before costs a
few dictionary lookups. :class:`AsyncEngine` runs the calls that may touch the network in
a worker thread so ASGI apps never block their event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from .config import Config, parse_bool, parse_words
from .errors import (
    ConfigError,
    KeycloakError,
    LoginError,
    OAuthError,
    TokenError,
    TokenStoreUnavailable,
    WrongAudience,
)
from .identity import Identity
from .oidc import Client, LoginRequest, TokenSet
from .plugins import Adapter, Plugins
from .roles import has_role, has_scope
from .singleflight import SingleFlight
from .stores import SessionRecord, TokenStore
from .stores.cookie import CookieTokenStore
from .stores.memory import MemoryTokenStore
from .tokens import TokenValidator

__all__ = [
    "AsyncEngine",
    "Engine",
    "EngineSettings",
    "Guard",
    "Identity",
    "Requirement",
    "safe_return_url",
]

_log = logging.getLogger(__name__)

_LOGINS_KEY = "kc.logins"
# Completed logins not yet followed by an admitted request, and why a session was refused:
# together they stop a login loop (callback -> page -> Keycloak -> callback ...).
_RECENT_LOGINS_KEY = "kc.recent_logins"
_REFUSED_KEY = "kc.refused"
_LOOP_WINDOW = 60.0  # seconds after a login in which a refused session means a loop
_LOOP_LOGINS = 3  # completed logins within the window, without one admitted request
# Printable ASCII punctuation but space and backslash: kept when a return URL is percent-encoded.
_URL_PUNCTUATION = "!#$%&'()*+,-./:;=?@[]^_`{|}~\"<>"
_MEMO_SIZE = 4096  # identities and verdicts remembered per validated token
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
# A finished refresh keeps answering its session's later requests this long (see SingleFlight).
_REFRESH_LINGER = 5.0
# How long a logged-out cookie session stays refused when its tokens name no end (offline).
_OFFLINE_COOKIE_TTL = 86_400 * 30.0


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a protected route needs.

    ``roles`` are role specs (``realm:admin``, ``api:editor``, or a bare role of this
    client); all are needed unless ``any_role``. ``scopes`` must all be in the token's
    ``scope``. ``api`` forces JSON 401/403 answers (``True``) or login redirects
    (``False``); by default the request decides (Accept, X-Requested-With, Authorization).
    ``bearer_only`` refuses session (cookie) authentication.
    """

    roles: tuple[str, ...] = ()
    any_role: bool = False
    scopes: tuple[str, ...] = ()
    api: bool | None = None
    bearer_only: bool = False

    @classmethod
    def for_roles(
        cls, roles: Iterable[str], *, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> Requirement:
        """Every role in ``roles`` (or one, with ``any_role``): what ``roles_required`` means.

        Raises:
            ValueError: ``roles`` is empty (a role check that checks nothing is a mistake).
        """
        needed = tuple(roles)
        if not needed:
            raise ValueError("a role requirement needs at least one role")
        return cls(roles=needed, any_role=any_role, scopes=tuple(scopes))

    @classmethod
    def for_bearer(
        cls, roles: Iterable[str] = (), *, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> Requirement:
        """A JSON API: a bearer token only (no session), JSON answers, optional roles/scopes."""
        return cls(tuple(roles), any_role, tuple(scopes), api=True, bearer_only=True)


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
    session_key: str = "kc"
    max_pending_logins: int = 5
    login_ttl: float = 600.0
    exempt_paths: tuple[str, ...] = ()
    scopes: tuple[str, ...] | None = None
    #: Where sessions' tokens live when the app passes no store and no plugin provides one
    #: (``KEYCLOAK_TOKEN_STORE``): ``memory`` (one process only) or a ``redis://`` URL.
    token_store: str = "memory"
    #: The app's public origin (``https://shop.example``): the callback and post-logout URLs,
    #: the logout's same-origin check and ``next`` are built from it, never from the request's
    #: Host. Unset, the request URL is used, as far as the framework's trusted hosts allow.
    public_url: str | None = None

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ConfigError(
                f"prefix must start with '/' and not end with one, got {self.prefix!r}",
                key="prefix",
            )
        if self.public_url is not None:
            object.__setattr__(self, "public_url", _public_origin(self.public_url))

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


@dataclass(slots=True)  # not frozen: built on every request, keep it cheap
class Guard:
    """The outcome of :meth:`Engine.protect` and :meth:`Engine.authenticate`.

    The request may proceed when ``response`` is ``None``; ``identity`` is then the user
    (``None`` on an exempt path) and ``token`` their access token. Otherwise ``response`` is
    the framework response (401, 403, 503 or a login redirect) to send instead.

    ``headers`` (``Set-Cookie`` after a silent refresh in cookie mode) must be added to
    whatever response the app sends; they are already part of ``response``.
    """

    identity: Any = None
    response: Any = None
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: The validated access-token claims behind ``identity`` (for :meth:`Engine.authorize`).
    claims: Mapping[str, Any] | None = None
    #: Whether the token came in an ``Authorization: Bearer`` header (not the session).
    bearer: bool = False

    @property
    def allowed(self) -> bool:
        """Whether the request may proceed."""
        return self.response is None


def safe_return_url(target: str | None, request_url: str) -> str | None:
    """``target`` if it stays on this site (a path, or this exact origin), else ``None``.

    Refuses other hosts, protocol-relative ``//host`` and backslash tricks, and control
    characters, so a login's ``next`` can never send the user elsewhere (no open redirect).
    """
    if not target or any(ord(c) < 32 or c == "\\" or c == "\x7f" for c in target):
        return None
    if not target.isascii():
        # A Location header is ASCII: percent-encode the rest (a lone surrogate has no UTF-8).
        try:
            target = quote(target, safe=_URL_PUNCTUATION)
        except UnicodeEncodeError:
            return None
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc:
        if target.startswith("/") and not target.startswith("//"):
            return target
        return None
    here = urlsplit(request_url)
    if (parts.scheme, parts.netloc) == (here.scheme, here.netloc):
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _public_origin(url: str, key: str = "public_url") -> str:
    """``url`` as an origin (``https://host[:port]``), or a :class:`ConfigError`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} must be an http(s) URL with a host, got {url!r}", key=key)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(
            f"{key} names only the app's origin (scheme, host, port), got {url!r}", key=key
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _quote_header(value: str) -> str:
    """``value`` for the inside of a header's quoted-string: printable ASCII, ``\\`` and ``"``
    escaped (servers refuse or mangle anything else: a 500, a dropped connection)."""
    if not (value.isascii() and value.isprintable()):
        value = "".join(c if " " <= c <= "~" else "?" for c in value)
    return value.replace("\\", "\\\\").replace('"', '\\"')


class _Tenant:
    """One realm/client: its client and where its sessions' tokens live."""

    __slots__ = ("client", "name", "public_origin", "ready_validator", "realm", "store")

    def __init__(
        self, name: str, client: Client, store: TokenStore, public_origin: str | None
    ) -> None:
        self.name = name
        self.client = client
        self.store = store
        self.realm = client.config.realm
        #: Where browsers reach the app (public_url or Config.redirect_uri), else None.
        self.public_origin = public_origin
        #: Set once the validator exists (discovery done), so async callers can use its cache.
        self.ready_validator: TokenValidator | None = None

    def validate(self, token: str) -> Mapping[str, Any]:
        validator = self.client.validator
        self.ready_validator = validator
        return validator.validate(token)


@dataclass(slots=True)
class _Session:
    """A browser session's tokens as found for one request."""

    key: str
    record: SessionRecord


class Engine:
    """Login, logout, refresh and protection for any framework with a kc adapter.

    Args:
        config: a :class:`~kc_core.Config` or :class:`~kc_core.Client`; or a mapping of
            tenant name to either, for several realms or clients in one app (the
            ``kc_select_tenant`` hook names the tenant of each request).
        plugins: the plugin manager (default: every adapter installed).
        store: where tokens live: a server-side :class:`~kc_core.stores.TokenStore`
            (default: the ``kc_token_store`` hook, else in memory) or a
            :class:`~kc_core.stores.cookie.CookieTokenStore` (encrypted cookies).
        settings: routes and behaviour.
        enforcer: an optional policy enforcer with a
            ``decide(method, path, token, claims, request_params, headers)`` method.

    Raises:
        PluginError: a plugin is broken (an unknown ``kc_*`` hook, ...).
    """

    def __init__(
        self,
        config: Config | Client | Mapping[str, Config | Client],
        *,
        plugins: Plugins | None = None,
        store: TokenStore | CookieTokenStore | None = None,
        settings: EngineSettings | None = None,
        enforcer: Any = None,
    ) -> None:
        self.plugins = plugins if plugins is not None else Plugins()
        self.plugins.check()
        self.settings = settings or EngineSettings()
        self.enforcer = enforcer
        self.cookies = store if isinstance(store, CookieTokenStore) else None
        server_store = None if isinstance(store, CookieTokenStore) else store
        tenants = config if isinstance(config, Mapping) else {"default": config}
        if not tenants:
            raise KeycloakError("the engine needs at least one configuration")
        self._tenants: dict[str, _Tenant] = {}
        for name, value in tenants.items():
            client = value if isinstance(value, Client) else Client(value)
            tenant_store = (
                server_store
                or self.plugins.token_store(client.config)
                or _store_from_setting(self.settings.token_store, client.config)
            )
            origin = _pinned_origin(self.settings, client.config)
            self._tenants[name] = _Tenant(name, client, tenant_store, origin)
        self._single = next(iter(self._tenants.values())) if len(self._tenants) == 1 else None
        self._refreshes: SingleFlight[SessionRecord | None] = SingleFlight(linger=_REFRESH_LINGER)
        self._identities: dict[int, tuple[Mapping[str, Any], Any]] = {}
        self._bearer_tokens: dict[str, str] = {}  # Authorization header -> its token
        exempt = self.settings.exempt_paths
        self._exempt_prefixes = (
            f"{self.settings.prefix}/",
            *(p for p in exempt if p.endswith("/")),
        )
        self._exempt_exact = frozenset(p for p in exempt if not p.endswith("/"))
        self._verdicts: dict[
            tuple[int, int], tuple[Mapping[str, Any], Requirement, str | None]
        ] = {}
        self._logout_lock = threading.Lock()
        self._seen_logout_tokens: dict[str, float] = {}
        # Store keys this engine created, to tell a session created by another process
        # (the memory store misused with several workers) from one that ended here.
        self._issued_keys: OrderedDict[str, None] = OrderedDict()

    # -- helpers for adapters -------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The client of the only tenant (an error with several)."""
        if self._single is None:
            raise KeycloakError("several tenants: use client_for(request)")
        return self._single.client

    def client_for(self, request: Any) -> Client:
        """The client serving ``request`` (its tenant's)."""
        return self._tenant(request).client

    def store_for(self, request: Any) -> TokenStore:
        """The server-side token store serving ``request`` (unused in cookie mode)."""
        return self._tenant(request).store

    def route(self, request: Any) -> Any | None:
        """Serve the request if its path is one of the engine's endpoints, else ``None``."""
        adapter = self.plugins.adapter_for(request)
        path = adapter.path(request)
        s = self.settings
        if not path.startswith(s.prefix + "/"):
            return None
        if path == s.login_path:
            return self.login(request)
        if path == s.callback_path:
            return self.callback(request)
        if path == s.logout_path:
            return self.logout(request)
        if path == s.backchannel_logout_path:
            return self.backchannel_logout(request)
        return None

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` is one of the engine's endpoints or an exempt path.

        An exempt path matches exactly, or by prefix when it ends with ``/``.
        """
        return path.startswith(self._exempt_prefixes) or path in self._exempt_exact

    def _answers_locally(self, request: Any) -> bool:
        """Whether :meth:`protect` can answer ``request`` with no I/O at all."""
        tenant = self._single
        if tenant is None:
            return False
        adapter = self.plugins.adapter_for(request)
        if self.is_exempt(adapter.path(request)):
            return True
        return self._bearer_is_cached(request, adapter, tenant)

    def _bearer_is_cached(self, request: Any, adapter: Adapter, tenant: _Tenant) -> bool:
        """Whether ``request`` carries a bearer token validated before (no I/O to judge it)."""
        return self._cached_bearer(request, adapter, tenant) is not None

    def _cached_bearer(
        self, request: Any, adapter: Adapter, tenant: _Tenant
    ) -> tuple[str, Mapping[str, Any]] | None:
        """The bearer token of ``request`` and its claims, if validated before (no I/O)."""
        validator = tenant.ready_validator
        if validator is None:
            return None
        authorization = adapter.header(request, "authorization")
        if authorization is None:
            return None
        # The same token string each time: its (1-2 KB) hash is computed once, not per check.
        token = self._bearer_tokens.get(authorization)
        if token is None:
            token = _bearer_token(authorization)
            if token is None:
                return None
            if len(self._bearer_tokens) >= _MEMO_SIZE:
                self._bearer_tokens.clear()
            self._bearer_tokens[authorization] = token
        claims = validator.cached(token)
        return None if claims is None else (token, claims)

    def _protect_locally(self, request: Any, requirement: Requirement) -> Guard | None:
        """:meth:`protect`'s answer when it needs no I/O (an exempt path, a bearer token
        validated before), else ``None``: one pass, for async callers on their loop."""
        tenant = self._single
        if tenant is None:
            return None
        adapter = self.plugins.adapter_for(request)
        if self.is_exempt(adapter.path(request)):
            return Guard()
        found = self._cached_bearer(request, adapter, tenant)
        if found is None:
            return None
        return self._admit_bearer(request, adapter, tenant, found[0], found[1], requirement)

    def _authenticate_locally(self, request: Any) -> Guard | None:
        """:meth:`authenticate`'s answer for a bearer token validated before, else ``None``."""
        tenant = self._single
        if tenant is None:
            return None
        found = self._cached_bearer(request, self.plugins.adapter_for(request), tenant)
        if found is None:
            return None
        return Guard(
            identity=self._identity(found[1], request),
            token=found[0],
            claims=found[1],
            bearer=True,
        )

    # -- protection -------------------------------------------------------------------------

    def protect(self, request: Any, requirement: Requirement = Requirement()) -> Guard:
        """Authenticate ``request`` and check ``requirement``.

        A bearer token is validated locally (no network once its key is known); otherwise
        the session is used, refreshing its tokens silently when they are about to expire.
        Exempt paths (:attr:`EngineSettings.exempt_paths`) always pass, without identity.
        Returns a :class:`Guard` whose ``response`` is the 401/403/503 answer or the login
        redirect when the request may not proceed.
        """
        adapter = self.plugins.adapter_for(request)
        if self.is_exempt(adapter.path(request)):
            return Guard()
        authorization = adapter.header(request, "authorization")
        if authorization is not None:
            return self._protect_bearer(request, adapter, authorization, requirement)
        if requirement.bearer_only:
            return Guard(response=self._unauthorized(request, adapter, None))
        return self._protect_session(request, adapter, requirement)

    def authenticate(self, request: Any) -> Guard:
        """Who is behind ``request``, without requiring anyone: ``Guard.identity`` or ``None``.

        ``Guard.response`` is set only when Keycloak is needed and unreachable (503).
        """
        adapter = self.plugins.adapter_for(request)
        authorization = adapter.header(request, "authorization")
        tenant = self._tenant(request)
        if authorization is not None:
            token = _bearer_token(authorization)
            if token is None:
                return Guard()
            try:
                claims = tenant.validate(token)
            except TokenError:
                return Guard()
            except KeycloakError as exc:
                return Guard(response=self._unavailable(request, adapter, exc))
            return Guard(
                identity=self._identity(claims, request), token=token, claims=claims, bearer=True
            )
        headers: list[tuple[str, str]] = []
        try:
            found = self._session_identity(request, adapter, tenant, headers)
        except _Unavailable as exc:
            return Guard(response=self._unavailable(request, adapter, exc.error))
        if found is None:
            return Guard(headers=tuple(headers))
        return Guard(identity=found[0], token=found[1], headers=tuple(headers), claims=found[2])

    def authorize(
        self, request: Any, guard: Guard, requirement: Requirement = Requirement()
    ) -> Guard:
        """Check ``requirement`` for a request :meth:`authenticate` already answered.

        Middlewares authenticate every request once (to put the user on it); a protected
        route then only needs its own roles, scopes and policies checked against the same
        claims, without validating the token again. A ``guard`` without claims (a visitor,
        a refusal) gets the full :meth:`protect`.
        """
        if guard.response is not None or guard.claims is None:
            return self.protect(request, requirement)
        adapter = self.plugins.adapter_for(request)
        if self.is_exempt(adapter.path(request)):
            return guard
        if requirement.bearer_only and not guard.bearer:
            return Guard(response=self._unauthorized(request, adapter, None))
        api = guard.bearer or self._wants_api(request, adapter, requirement)
        denied = self._check(
            request,
            adapter,
            self._tenant(request),
            guard.claims,
            guard.token or "",
            requirement,
            api=api,
            headers=guard.headers,
        )
        if denied is not None:
            return Guard(response=denied, headers=guard.headers)
        return guard

    def refuse(self, request: Any, guard: Guard, reason: str, api: bool | None = None) -> Any:
        """The engine's refusal of a request the app's own rules denied (an ACL, a check).

        ``guard`` is what :meth:`authenticate` answered: its 503 stays a 503; a visitor gets
        the login redirect (browsers) or a JSON 401; a user gets a 403 (JSON for API clients
        and bearer tokens), saying ``reason``. ``api`` forces the kind, as in
        :class:`Requirement`.
        """
        if guard.response is not None:
            return guard.response
        adapter = self.plugins.adapter_for(request)
        wants_api = self._wants_api(request, adapter, Requirement(api=api))
        if guard.identity is None:
            if wants_api:
                return self._unauthorized(request, adapter, None, guard.headers)
            return self._login_redirect(request, adapter, guard.headers)
        return self._forbidden(request, adapter, reason, guard.bearer or wants_api, guard.headers)

    def end_session(self, request: Any) -> list[tuple[str, str]]:
        """End ``request``'s session in this app only (a local logout; Keycloak's stays).

        Returns the headers to add to the response (cookie mode clears the token cookies).
        ``kc_after_logout`` is called, as for :meth:`logout`.

        Raises:
            TokenStoreUnavailable: the token store cannot be reached.
        """
        adapter = self.plugins.adapter_for(request)
        tenant = self._tenant(request)
        headers: list[tuple[str, str]] = []
        found = self._load_session(request, adapter, tenant)
        self._end_session(request, adapter, tenant, None if found is None else found.key, headers)
        _forget_recent_logins(adapter.session(request))
        if found is not None:
            self._refuse_copies(tenant, found.record)
        tokens = None if found is None else found.record.tokens
        identity = (
            self._identity(tokens.id_claims, request)
            if tokens is not None and tokens.id_claims is not None
            else None
        )
        self.plugins.after_logout(request, identity)
        return headers

    def _protect_bearer(
        self, request: Any, adapter: Adapter, authorization: str, requirement: Requirement
    ) -> Guard:
        token = _bearer_token(authorization)
        if token is None:
            reason = "the Authorization header is not a Bearer token"
            return Guard(response=self._unauthorized(request, adapter, reason))
        tenant = self._tenant(request)
        try:
            claims = tenant.validate(token)
        except WrongAudience as exc:
            # A valid token of another client: a deployment to fix, not an attack to ignore.
            _log.warning("bearer token refused: %s", exc)
            return Guard(response=self._unauthorized(request, adapter, str(exc)))
        except TokenError as exc:
            return Guard(response=self._unauthorized(request, adapter, str(exc)))
        except KeycloakError as exc:
            return Guard(response=self._unavailable(request, adapter, exc))
        return self._admit_bearer(request, adapter, tenant, token, claims, requirement)

    def _admit_bearer(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        token: str,
        claims: Mapping[str, Any],
        requirement: Requirement,
    ) -> Guard:
        identity = self._identity(claims, request)
        denied = self._check(request, adapter, tenant, claims, token, requirement, api=True)
        if denied is not None:
            return Guard(response=denied)
        return Guard(identity=identity, token=token, claims=claims, bearer=True)

    def _protect_session(self, request: Any, adapter: Adapter, requirement: Requirement) -> Guard:
        tenant = self._tenant(request)
        headers: list[tuple[str, str]] = []
        try:
            found = self._session_identity(request, adapter, tenant, headers)
        except _Unavailable as exc:
            return Guard(response=self._unavailable(request, adapter, exc.error))
        api = self._wants_api(request, adapter, requirement)
        if found is None:
            if api:
                response = self._unauthorized(request, adapter, None, headers)
            else:
                response = self._login_redirect(request, adapter, headers)
            return Guard(response=response, headers=tuple(headers))
        identity, token, claims = found
        denied = self._check(
            request, adapter, tenant, claims, token, requirement, api=api, headers=headers
        )
        if denied is not None:
            return Guard(response=denied, headers=tuple(headers))
        return Guard(identity=identity, token=token, headers=tuple(headers), claims=claims)

    def _check(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        claims: Mapping[str, Any],
        token: str,
        requirement: Requirement,
        *,
        api: bool,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any | None:
        if requirement.roles or requirement.scopes:
            # Claims of a cached token are the same object each time: judge them once.
            key = (id(claims), id(requirement))
            hit = self._verdicts.get(key)
            if hit is not None and hit[0] is claims and hit[1] is requirement:
                reason = hit[2]
            else:
                reason = _requirement_failure(claims, requirement, tenant.client.config.client_id)
                if len(self._verdicts) >= _MEMO_SIZE:
                    self._verdicts.clear()
                self._verdicts[key] = (claims, requirement, reason)
            if reason is not None:
                return self._forbidden(request, adapter, reason, api, headers)
        if self.enforcer is not None:
            decision = self.enforcer.enforce(
                adapter.method(request),
                adapter.path(request),
                token,
                claims,
                params=adapter.query(request),
                headers=_HeaderView(adapter, request),
            )
            if not decision.allowed:
                if decision.redirect_to is not None:
                    return adapter.redirect(request, decision.redirect_to, list(headers))
                return adapter.response(
                    request,
                    decision.status,
                    json.dumps(
                        {"error": "access_denied", "error_description": decision.reason}
                    ).encode(),
                    _JSON,
                    [*decision.headers.items(), *headers],
                )
        return None

    def _identity(self, claims: Mapping[str, Any], request: Any) -> Any:
        # Claims of a cached token are the same object each time: build its identity once.
        hit = self._identities.get(id(claims))
        if hit is not None and hit[0] is claims:
            return hit[1]
        identity = self.plugins.build_identity(claims, request)
        if len(self._identities) >= _MEMO_SIZE:
            self._identities.clear()
        self._identities[id(claims)] = (claims, identity)
        return identity

    # -- sessions -----------------------------------------------------------------------------

    def _site(self, request: Any, adapter: Adapter, tenant: _Tenant) -> str:
        """The app's origin as browsers reach it: pinned by settings, else the request's."""
        return tenant.public_origin or _origin(adapter.url(request))

    def _load_session(self, request: Any, adapter: Adapter, tenant: _Tenant) -> _Session | None:
        if self.cookies is not None:
            record = self.cookies.decode(adapter.cookies(request))
            if record is None or self._logged_out(tenant, record):
                return None
            return _Session(self.cookies.key_of(record), record)
        data = adapter.session(request).get(self.settings.session_key)
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return None
        key = data["key"]
        record = tenant.store.get(key)
        return None if record is None else _Session(key, record)

    def _save_session(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        record: SessionRecord,
        headers: list[tuple[str, str]],
    ) -> None:
        """Keep a new session's tokens (a new store key at every login: no fixation)."""
        if self.cookies is not None:
            headers.extend(
                self.cookies.set_cookie_headers(
                    record,
                    secure=adapter.is_secure(request),
                    max_age=_record_ttl(record.tokens),
                    current=adapter.cookies(request),
                )
            )
            return
        session = adapter.session(request)
        old = session.get(self.settings.session_key)
        if isinstance(old, dict) and isinstance(old.get("key"), str):
            tenant.store.delete(old["key"])
        key = secrets.token_urlsafe(32)
        tenant.store.set(key, record, _record_ttl(record.tokens))
        self._issued_keys[key] = None
        if len(self._issued_keys) > _MEMO_SIZE * 16:
            self._issued_keys.popitem(last=False)
        adapter.rotate_session(request)
        adapter.session(request)[self.settings.session_key] = {"key": key, "tenant": tenant.name}

    def _end_session(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        key: str | None,
        headers: list[tuple[str, str]],
    ) -> None:
        """Forget the request's session here (tokens and the session's pointer to them)."""
        if self.cookies is not None:
            cookies = adapter.cookies(request)
            headers.extend(
                self.cookies.clear_cookie_headers(cookies, secure=adapter.is_secure(request))
            )
            return
        if key is not None:
            tenant.store.delete(key)
        adapter.session(request).pop(self.settings.session_key, None)

    def _refuse_copies(self, tenant: _Tenant, record: SessionRecord) -> None:
        """Cookie mode: refuse every cookie of ``record``'s session issued until now.

        A copy of the cookie saved before logout would otherwise keep working until its
        tokens expire. The mark lives in the tenant's token store (this process's memory, or
        the shared store a ``kc_token_store`` hook gives) for as long as such a cookie lives.
        """
        if self.cookies is None:
            return
        now = time.time()
        ttl = _record_ttl(record.tokens) or _OFFLINE_COOKIE_TTL
        mark = TokenSet(access_token="", token_type="logged-out", expires_at=now)
        tenant.store.set(_logout_mark_key(self.cookies, record), SessionRecord(mark, sub=""), ttl)

    def _logged_out(self, tenant: _Tenant, record: SessionRecord) -> bool:
        """Whether a logout refused ``record`` (see :meth:`_refuse_copies`)."""
        assert self.cookies is not None
        mark = tenant.store.get(_logout_mark_key(self.cookies, record))
        if mark is None:
            return False
        # A later login into the same Keycloak session (a local logout) is not refused; this
        # app's own clock dates both (a token's iat has whole seconds and Keycloak's clock).
        tokens = record.tokens
        received_at = tokens.expires_at - float(tokens.raw.get("expires_in") or 0)
        return received_at <= mark.tokens.expires_at

    def _session_identity(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        headers: list[tuple[str, str]],
    ) -> tuple[Any, str, Mapping[str, Any]] | None:
        """The session's user, token and claims, refreshing them when about to expire.

        Raises:
            _Unavailable: Keycloak or the token store is needed and unreachable; the
                session is kept for when they are back.
        """
        try:
            return self._session_identity_or_fail(request, adapter, tenant, headers)
        except TokenStoreUnavailable as exc:
            raise _Unavailable(exc) from exc

    def _session_identity_or_fail(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        headers: list[tuple[str, str]],
    ) -> tuple[Any, str, Mapping[str, Any]] | None:
        found = self._load_session(request, adapter, tenant)
        if found is None:
            if self.cookies is not None:
                # Tampered, incomplete or ended cookies: delete what the browser sent.
                self._end_session(request, adapter, tenant, None, headers)
            elif self.settings.session_key in adapter.session(request):
                # Ended elsewhere (back-channel logout, expiry): forget it here too.
                self._note_lost_session(adapter.session(request), tenant)
                self._end_session(request, adapter, tenant, None, headers)
            return None
        record: SessionRecord | None = found.record
        if found.record.tokens.expires_within(self.settings.refresh_margin):
            record = self._refresh(request, adapter, tenant, found, headers)
            if record is None:
                self._end_session(request, adapter, tenant, found.key, headers)
                return None
        assert record is not None
        try:
            claims = tenant.validate(record.tokens.access_token)
        except TokenError as exc:
            _log.warning("a session's access token was refused, ending the session: %s", exc)
            self._note_refusal(adapter.session(request), f"its access token was refused: {exc}")
            self._end_session(request, adapter, tenant, found.key, headers)
            return None
        except KeycloakError as exc:
            raise _Unavailable(exc) from exc
        recent = adapter.session(request).get(_RECENT_LOGINS_KEY)
        if isinstance(recent, list) and len(recent) > 1:
            # Logins in a row, then an admitted request: no loop. (A single login's entry
            # stays until it ages out, so the first request after login writes no session.)
            adapter.session(request).pop(_RECENT_LOGINS_KEY, None)
        return self._identity(claims, request), record.tokens.access_token, claims

    def _note_refusal(self, session: MutableMapping[str, Any], reason: str) -> None:
        """Remember why the session ended, for the loop check of :meth:`_login_redirect`."""
        if _RECENT_LOGINS_KEY in session:
            session[_REFUSED_KEY] = reason

    def _note_lost_session(self, session: MutableMapping[str, Any], tenant: _Tenant) -> None:
        """The session points at tokens the store does not have: say why, if it is a fault."""
        pointer = session.get(self.settings.session_key)
        key = pointer.get("key") if isinstance(pointer, dict) else None
        if not isinstance(tenant.store, MemoryTokenStore) or key in self._issued_keys:
            return  # ended here, or by another process sharing a real store: no fault
        reason = (
            "its tokens are not in this process's memory token store: another process "
            "created the session (the memory store serves one process only; with several "
            "worker processes use the Redis store, see docs/token-stores.md) or the app "
            "restarted"
        )
        _log.warning("a session was lost right after login: %s", reason)
        self._note_refusal(session, reason)

    def _refresh(
        self,
        request: Any,
        adapter: Adapter,
        tenant: _Tenant,
        found: _Session,
        headers: list[tuple[str, str]],
    ) -> SessionRecord | None:
        """New tokens for an expiring session; ``None`` when the session is dead.

        One refresh per session at a time (single flight); requests arriving meanwhile, or
        shortly after, share its result.

        Raises:
            _Unavailable: Keycloak is unreachable and the access token has expired.
        """
        seen = found.record.tokens
        if seen.refresh_token is None:
            return found.record if not seen.expires_within(0) else None

        def refresh() -> SessionRecord | None:
            current = found.record
            if self.cookies is None:
                stored = tenant.store.get(found.key)
                if stored is None:
                    return None
                if stored.tokens.access_token != seen.access_token:
                    return stored  # another process refreshed it meanwhile
                current = stored
            assert current.tokens.refresh_token is not None
            new_tokens = tenant.client.refresh(current.tokens.refresh_token)
            updated = SessionRecord(new_tokens, sub=current.sub, sid=current.sid)
            if self.cookies is None:
                tenant.store.set(found.key, updated, _record_ttl(new_tokens))
            self.plugins.after_refresh(request, new_tokens)
            return updated

        try:
            record = self._refreshes.run(found.key, refresh)
        except (OAuthError, TokenError) as exc:
            # The refresh token is dead (session ended in Keycloak, expired): log out here.
            _log.info("refresh refused, ending the session: %s", exc)
            return None
        except KeycloakError as exc:
            if not seen.expires_within(0):
                _log.warning("refresh failed, the access token is still valid: %s", exc)
                return found.record
            # Never lose the session because Keycloak is down: answer 503, keep everything.
            raise _Unavailable(exc) from exc
        if record is not None and self.cookies is not None:
            headers.extend(
                self.cookies.set_cookie_headers(
                    record,
                    secure=adapter.is_secure(request),
                    max_age=_record_ttl(record.tokens),
                    current=adapter.cookies(request),
                )
            )
        return record

    # -- endpoints ------------------------------------------------------------------------------

    def login(self, request: Any) -> Any:
        """``GET {prefix}/login?next=/page``: start a login and redirect to Keycloak.

        ``next`` must stay on this site (see :func:`safe_return_url`); otherwise the user
        lands on :attr:`EngineSettings.after_login_url`. Several logins may be pending at
        once (several tabs); each is single use.
        """
        adapter = self.plugins.adapter_for(request)
        stop = self._loop_stop(request, adapter)
        if stop is not None:
            return stop
        tenant = self._tenant(request)
        site = self._site(request, adapter, tenant)
        target = safe_return_url(adapter.query(request).get("next"), site)
        try:
            login = tenant.client.login(
                site + self.settings.callback_path,
                scopes=self.settings.scopes,
                remember=False,
            )
        except KeycloakError as exc:
            return self._unavailable(request, adapter, exc)
        session = adapter.session(request)
        now = time.time()
        pending = {
            state: entry
            for state, entry in _pending_logins(session).items()
            if _created_at(entry) + self.settings.login_ttl > now
        }
        pending[login.state] = {
            "nonce": login.nonce,
            "code_verifier": login.code_verifier,
            "redirect_uri": login.redirect_uri,
            "next": target or self.settings.after_login_url,
            "created_at": login.created_at,
            "tenant": tenant.name,
        }
        # Several tabs may log in at once; keep the newest few.
        while len(pending) > self.settings.max_pending_logins:
            pending.pop(min(pending, key=lambda s: _created_at(pending[s])))
        session[_LOGINS_KEY] = pending
        return adapter.redirect(request, login.url, [("Cache-Control", "no-store")])

    def callback(self, request: Any) -> Any:
        """``GET {prefix}/callback``: check state, exchange the code, start the session.

        An unknown, reused or missing ``state`` gets a 400 page; a refused code a 401 page;
        an unreachable Keycloak a 503. On success the session gets a new store key (and
        the framework session a new id) and the browser goes to the page first asked for.
        """
        adapter = self.plugins.adapter_for(request)
        query = adapter.query(request)
        session = adapter.session(request)
        state = query.get("state")
        pending = _pending_logins(session)
        entry = pending.pop(state, None) if state else None
        if entry is not None:
            session[_LOGINS_KEY] = pending  # single use, whatever happens next
        if not isinstance(entry, dict):
            return self._page(
                request, adapter, 400,
                "This login link is invalid, expired or was already used. Please log in again.",
            )  # fmt: skip
        if query.get("error"):
            detail = query.get("error_description") or query["error"]
            return self._page(request, adapter, 401, f"Login failed: {detail}")
        code = query.get("code")
        if not code:
            return self._page(request, adapter, 400, "The login answer carries no code.")
        tenant = self._tenants.get(str(entry.get("tenant"))) or self._tenant(request)
        try:
            login = LoginRequest(
                url="",
                state=str(state),
                nonce=str(entry["nonce"]),
                code_verifier=entry.get("code_verifier"),
                redirect_uri=str(entry["redirect_uri"]),
                created_at=_created_at(entry),
            )
        except (KeyError, TypeError, ValueError):
            return self._page(request, adapter, 400, "This login link is invalid.")
        try:
            tokens = tenant.client.callback(code, str(state), login=login, iss=query.get("iss"))
        except TokenError as exc:
            # Keycloak's own tokens failing a check is a deployment to fix: say which check.
            _log.warning("login refused: Keycloak's ID token does not pass: %s", exc)
            return self._error_page(
                request,
                adapter,
                401,
                "Login refused",
                f"The login worked in Keycloak, but this app refuses its ID token: {exc}",
            )
        except (OAuthError, LoginError) as exc:
            _log.info("login callback refused: %s", exc)
            return self._page(request, adapter, 401, "Login failed. Please try again.")
        except KeycloakError as exc:
            return self._unavailable(request, adapter, exc)
        try:
            # The next request checks the session's access token: refusing it there would
            # send the browser back to Keycloak, whose SSO session answers at once (a loop).
            tenant.validate(tokens.access_token)
        except TokenError as exc:
            _log.warning("login refused: Keycloak's access token does not pass: %s", exc)
            return self._error_page(
                request,
                adapter,
                401,
                "Login refused",
                f"The login worked in Keycloak, but this app refuses the access token it "
                f"issued: {exc}",
            )
        except KeycloakError as exc:
            return self._unavailable(request, adapter, exc)
        claims = tokens.id_claims or {}
        sid = claims.get("sid")
        record = SessionRecord(
            tokens, sub=str(claims.get("sub", "")), sid=sid if isinstance(sid, str) else None
        )
        headers: list[tuple[str, str]] = [("Cache-Control", "no-store")]
        try:
            self._save_session(request, adapter, tenant, record, headers)
        except TokenStoreUnavailable as exc:
            return self._unavailable(request, adapter, exc)
        session = adapter.session(request)  # the rotated one
        now = time.time()
        recent = session.get(_RECENT_LOGINS_KEY)
        if not isinstance(recent, list):
            recent = []
        recent = [t for t in recent if isinstance(t, float | int) and now - t < _LOOP_WINDOW]
        session[_RECENT_LOGINS_KEY] = [*recent[-(_LOOP_LOGINS - 1) :], now]
        session.pop(_REFUSED_KEY, None)
        identity = self._identity(claims, request)
        self.plugins.after_login(request, tokens, identity)
        site = self._site(request, adapter, tenant)
        target = safe_return_url(str(entry.get("next") or ""), site)
        return adapter.redirect(request, target or self.settings.after_login_url, headers)

    def logout(self, request: Any) -> Any:
        """``POST {prefix}/logout``: end the session here and (by default) in Keycloak.

        GET answers 405 unless :attr:`EngineSettings.allow_get_logout`; a cross-site request
        (an ``Origin`` other than the app's, ``Origin: null``, or ``Sec-Fetch-Site`` other
        than ``same-origin``/``none``) answers 403.
        """
        adapter = self.plugins.adapter_for(request)
        method = adapter.method(request)
        if method != "POST" and not (method == "GET" and self.settings.allow_get_logout):
            return adapter.response(
                request, 405, b"Logout must be a POST.", _TEXT, [("Allow", "POST")]
            )
        tenant = self._tenant(request)
        site = self._site(request, adapter, tenant)
        if _cross_site(
            adapter.header(request, "origin"), adapter.header(request, "sec-fetch-site"), site
        ):
            return self._page(request, adapter, 403, "Cross-site logout refused.")
        headers: list[tuple[str, str]] = [("Cache-Control", "no-store")]
        try:
            found = self._load_session(request, adapter, tenant)
            key = None if found is None else found.key
            self._end_session(request, adapter, tenant, key, headers)
            _forget_recent_logins(adapter.session(request))
            if found is not None:
                self._refuse_copies(tenant, found.record)
        except TokenStoreUnavailable as exc:
            return self._unavailable(request, adapter, exc)
        record = found.record if found is not None else None
        identity = (
            self._identity(record.tokens.id_claims, request)
            if record is not None and record.tokens.id_claims is not None
            else None
        )
        self.plugins.after_logout(request, identity)
        after = site + self.settings.after_logout_url
        mode = self.settings.logout_mode
        if record is not None and mode == "server" and record.tokens.refresh_token:
            try:
                tenant.client.logout(record.tokens.refresh_token)
            except KeycloakError as exc:
                _log.warning("Keycloak logout failed (the local session is gone): %s", exc)
        if record is not None and mode == "redirect":
            try:
                location = tenant.client.logout_url(
                    id_token_hint=record.tokens.id_token, post_logout_redirect_uri=after
                )
            except KeycloakError as exc:
                _log.warning("no end-session URL (the local session is gone): %s", exc)
            else:
                return adapter.redirect(request, location, headers)
        return adapter.redirect(request, self.settings.after_logout_url, headers)

    def backchannel_logout(self, request: Any) -> Any:
        """``POST {prefix}/backchannel-logout``: Keycloak ends a session; end it here.

        Implements OpenID Connect Back-Channel Logout 1.0: the ``logout_token`` is
        validated (signature, issuer, audience, ``events``, ``sid``/``sub``, no ``nonce``),
        refused when replayed, and every session it names ends. Answers 200, or 400 with a
        JSON error.
        """
        adapter = self.plugins.adapter_for(request)
        if adapter.method(request) != "POST":
            return adapter.response(request, 405, b"", _TEXT, [("Allow", "POST")])
        token = adapter.form(request).get("logout_token")
        if not token:
            return self._json(request, adapter, 400, "invalid_request", "logout_token missing")
        tenant = self._tenant(request)
        try:
            claims = tenant.client.validate_logout_token(token)
        except TokenError as exc:
            return self._json(request, adapter, 400, "invalid_request", str(exc))
        except KeycloakError as exc:
            return self._unavailable(request, adapter, exc)
        now = time.time()
        until = float(claims.get("exp") or now + 300)
        jti = claims.get("jti")
        if isinstance(jti, str):
            with self._logout_lock:
                if jti in self._seen_logout_tokens:
                    replayed = True
                else:
                    replayed = False
                    self._seen_logout_tokens = {
                        k: v for k, v in self._seen_logout_tokens.items() if v > now
                    }
                    self._seen_logout_tokens[jti] = until
            if replayed:
                return self._json(request, adapter, 400, "invalid_request", "logout token replayed")
        sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
        sub = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        if self.cookies is not None:
            # Cookies live in browsers: refuse them from now on, for as long as they may live.
            self.cookies.end(sid=sid, sub=sub, until=now + 86_400 * 30)
        try:
            ended = tenant.store.delete_matching(sid=sid, sub=sub)
        except TokenStoreUnavailable as exc:
            return self._unavailable(request, adapter, exc)
        _log.info("back-channel logout ended %d session(s)", ended)
        return adapter.response(request, 200, b"", _TEXT, [("Cache-Control", "no-store")])

    # -- answers ------------------------------------------------------------------------------

    def _tenant(self, request: Any) -> _Tenant:
        if self._single is not None:
            return self._single
        name = self.plugins.select_tenant(request)
        tenant = self._tenants.get(name or "")
        if tenant is None:
            raise KeycloakError(f"no tenant named {name!r} (kc_select_tenant)")
        return tenant

    def _wants_api(self, request: Any, adapter: Adapter, requirement: Requirement) -> bool:
        if requirement.api is not None:
            return requirement.api
        if adapter.header(request, "x-requested-with") == "XMLHttpRequest":
            return True
        accept = adapter.header(request, "accept") or ""
        return "json" in accept and "text/html" not in accept

    def _unauthorized(
        self,
        request: Any,
        adapter: Adapter,
        reason: str | None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any:
        # RFC 6750 section 3: no error attribute when the request carried no token.
        realm = self._tenant(request).realm
        challenge = f'Bearer realm="{_quote_header(realm)}"'
        if reason is not None:
            challenge += f', error="invalid_token", error_description="{_quote_header(reason)}"'
        body = {"error": "invalid_token" if reason else "unauthorized",
                "error_description": reason or "authentication required"}  # fmt: skip
        return adapter.response(
            request,
            401,
            json.dumps(body).encode(),
            _JSON,
            [("WWW-Authenticate", challenge), ("Cache-Control", "no-store"), *headers],
        )

    def _forbidden(
        self,
        request: Any,
        adapter: Adapter,
        reason: str,
        api: bool,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any:
        if api:
            realm = self._tenant(request).realm
            challenge = (
                f'Bearer realm="{_quote_header(realm)}", error="insufficient_scope", '
                f'error_description="{_quote_header(reason)}"'
            )
            body = json.dumps({"error": "forbidden", "error_description": reason}).encode()
            return adapter.response(
                request, 403, body, _JSON, [("WWW-Authenticate", challenge), *headers]
            )
        return self._page(request, adapter, 403, "You do not have access to this page.", headers)

    def _unavailable(self, request: Any, adapter: Adapter, error: KeycloakError) -> Any:
        what = "session store" if isinstance(error, TokenStoreUnavailable) else "login service"
        _log.warning("the %s is unavailable: %s", what, error)
        description = f"the {what} is unreachable; your session is kept, try again shortly"
        body = json.dumps(
            {"error": "temporarily_unavailable", "error_description": description}
        ).encode()
        return adapter.response(
            request, 503, body, _JSON, [("Retry-After", "5"), ("Cache-Control", "no-store")]
        )

    def _loop_stop(
        self, request: Any, adapter: Adapter, headers: Sequence[tuple[str, str]] = ()
    ) -> Any | None:
        """An error page instead of sending the browser to Keycloak again, when that would
        loop: a session refused right after its login, or several logins in a row that
        were never followed by an admitted request."""
        session = adapter.session(request)
        recent = session.get(_RECENT_LOGINS_KEY)
        if not isinstance(recent, list) or not recent:
            return None
        now = time.time()
        recent = [t for t in recent if isinstance(t, float | int) and now - t < _LOOP_WINDOW]
        refused = session.get(_REFUSED_KEY)
        if recent and isinstance(refused, str):
            detail = f"You have just logged in, but this app ended the session: {refused}."
        elif len(recent) >= _LOOP_LOGINS:
            detail = (
                f"{len(recent)} logins completed within {_LOOP_WINDOW:.0f} seconds, yet no "
                "page accepted the session: the session does not survive between requests "
                "(several worker processes without a shared session secret or token store?)."
            )
        else:
            return None
        session.pop(_RECENT_LOGINS_KEY, None)
        session.pop(_REFUSED_KEY, None)
        _log.warning("stopped a login loop: %s", detail)
        return self._error_page(request, adapter, 401, "Login loop stopped", detail, headers)

    def _login_redirect(
        self, request: Any, adapter: Adapter, headers: Sequence[tuple[str, str]] = ()
    ) -> Any:
        stop = self._loop_stop(request, adapter, headers)
        if stop is not None:
            return stop
        url = urlsplit(adapter.url(request))
        here = url.path + (f"?{url.query}" if url.query else "")
        return adapter.redirect(
            request, f"{self.settings.login_path}?{urlencode({'next': here})}", list(headers)
        )

    def _page(
        self,
        request: Any,
        adapter: Adapter,
        status: int,
        message: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any:
        body = message.encode("utf-8", "replace")  # a lone surrogate from a query string
        return adapter.response(
            request, status, body, _TEXT, [("Cache-Control", "no-store"), *headers]
        )

    def _error_page(
        self,
        request: Any,
        adapter: Adapter,
        status: int,
        title: str,
        detail: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any:
        """An error that a person or an operator must act on: HTML for browsers (with a
        way out), JSON for API clients."""
        if self._wants_api(request, adapter, Requirement()):
            body = json.dumps({"error": "login_failed", "error_description": detail}).encode()
            return adapter.response(
                request, status, body, _JSON, [("Cache-Control", "no-store"), *headers]
            )
        login = html.escape(f"{self.settings.login_path}?{urlencode({'next': '/'})}")
        page = (
            '<!doctype html><html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
            f'<p><a href="{login}">Log in again</a></p></body></html>'
        )
        return adapter.response(
            request,
            status,
            page.encode(),
            "text/html; charset=utf-8",
            [("Cache-Control", "no-store"), *headers],
        )

    def _json(
        self, request: Any, adapter: Adapter, status: int, error: str, description: str
    ) -> Any:
        body = json.dumps({"error": error, "error_description": description}).encode()
        return adapter.response(request, status, body, _JSON, [("Cache-Control", "no-store")])


class _Unavailable(Exception):
    def __init__(self, error: KeycloakError) -> None:
        self.error = error


class _HeaderView(Mapping[str, str]):
    """Request headers for the enforcer's claim information points, read on demand."""

    def __init__(self, adapter: Adapter, request: Any) -> None:
        self._adapter = adapter
        self._request = request

    def __getitem__(self, name: str) -> str:
        value = self._adapter.header(self._request, name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def _cross_site(origin: str | None, fetch_site: str | None, site: str) -> bool:
    """Whether a request's ``Origin``/``Sec-Fetch-Site`` say it came from another origin.

    ``Origin: null`` (sandboxed frames, some redirects) is another origin too; a browser that
    says ``same-site`` means a sibling origin, which may be someone else's subdomain.
    """
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return True
    return origin is not None and origin.strip().lower() != site.lower()


def _pinned_origin(settings: EngineSettings, config: Config) -> str | None:
    """The public origin a tenant's URLs are built from, or ``None`` (the request's).

    ``Config.redirect_uri`` is honoured as the callback URL: its origin pins the app's, as
    ``public_url`` does; a path other than the engine's callback path, or an origin other
    than ``public_url``, contradicts the settings.

    Raises:
        ConfigError: ``redirect_uri`` contradicts the engine's settings.
    """
    if not config.redirect_uri:
        return settings.public_url
    parts = urlsplit(config.redirect_uri)
    if parts.path != settings.callback_path or parts.query or parts.fragment:
        raise ConfigError(
            f"redirect_uri {config.redirect_uri!r} must be the engine's callback URL "
            f"(<public origin>{settings.callback_path}); set public_url instead, or leave "
            "redirect_uri unset",
            key="redirect_uri",
        )
    origin = _public_origin(_origin(config.redirect_uri), "redirect_uri")
    if settings.public_url is not None and origin != settings.public_url:
        raise ConfigError(
            f"redirect_uri {config.redirect_uri!r} is not on public_url {settings.public_url!r}",
            key="redirect_uri",
        )
    return origin


def _logout_mark_key(cookies: CookieTokenStore, record: SessionRecord) -> str:
    # By Keycloak session when known: a copy saved before a refresh has other tokens.
    if record.sid is not None:
        return f"kc-logged-out:sid:{record.sid}"
    return f"kc-logged-out:{cookies.key_of(record)}"


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


def _requirement_failure(
    claims: Mapping[str, Any], requirement: Requirement, client_id: str
) -> str | None:
    """Why ``claims`` do not meet ``requirement`` (roles, scopes), or ``None`` if they do."""
    if requirement.roles:
        granted = [has_role(claims, spec, client_id=client_id) for spec in requirement.roles]
        if not (any(granted) if requirement.any_role else all(granted)):
            return "the token lacks a required role"
    if requirement.scopes and not has_scope(claims, requirement.scopes):
        return "the token lacks a required scope"
    return None


def _store_from_setting(setting: str, config: Config) -> TokenStore:
    """The store :attr:`EngineSettings.token_store` names, one prefix per realm and client."""
    if setting == "memory":
        return MemoryTokenStore()
    if setting.startswith(("redis://", "rediss://", "unix://")):
        from .stores.redis import RedisTokenStore  # the optional redis dependency

        return RedisTokenStore.from_url(setting, prefix=RedisTokenStore.prefix_for(config))
    raise ConfigError(
        f"token_store must be 'memory' or a redis:// URL, got {setting.split(':', 1)[0]!r}...",
        key="token_store",
    )


def _forget_recent_logins(session: MutableMapping[str, Any]) -> None:
    """A logout: the logins before it cannot be part of a loop."""
    if _RECENT_LOGINS_KEY in session:
        session.pop(_RECENT_LOGINS_KEY, None)
        session.pop(_REFUSED_KEY, None)


def _bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _pending_logins(session: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The session's pending logins by state; anything else found under the key is ignored."""
    found = session.get(_LOGINS_KEY)
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, dict)}


def _created_at(entry: Mapping[str, Any]) -> float:
    """When a pending login started; 0 (long expired) unless a finite number was kept."""
    value = entry.get("created_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _record_ttl(tokens: TokenSet) -> float | None:
    if tokens.refresh_expires_at is None:
        return None if tokens.refresh_token else max(tokens.expires_at - time.time(), 1.0)
    return max(tokens.refresh_expires_at - time.time(), 1.0)


class AsyncEngine:
    """The same :class:`Engine` for ASGI adapters, never blocking the event loop.

    Requests answered without any I/O (an exempt path, a bearer token validated before) are
    checked on the loop; everything that may reach Keycloak or a shared store runs in a
    worker thread. The adapter reads a POST body before handing the request over.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def protect(self, request: Any, requirement: Requirement = Requirement()) -> Guard:
        """See :meth:`Engine.protect`."""
        guard = self.engine._protect_locally(request, requirement)
        if guard is not None:
            return guard
        return await asyncio.to_thread(self.engine.protect, request, requirement)

    async def authorize(
        self, request: Any, guard: Guard, requirement: Requirement = Requirement()
    ) -> Guard:
        """See :meth:`Engine.authorize`; on the loop unless a policy enforcer may call out."""
        if guard.claims is not None and guard.response is None and self.engine.enforcer is None:
            return self.engine.authorize(request, guard, requirement)
        return await asyncio.to_thread(self.engine.authorize, request, guard, requirement)

    async def authenticate(self, request: Any) -> Guard:
        """See :meth:`Engine.authenticate`."""
        guard = self.engine._authenticate_locally(request)
        if guard is not None:
            return guard
        return await asyncio.to_thread(self.engine.authenticate, request)

    async def route(self, request: Any) -> Any | None:
        """See :meth:`Engine.route`."""
        return await asyncio.to_thread(self.engine.route, request)

    async def login(self, request: Any) -> Any:
        """See :meth:`Engine.login`."""
        return await asyncio.to_thread(self.engine.login, request)

    async def callback(self, request: Any) -> Any:
        """See :meth:`Engine.callback`."""
        return await asyncio.to_thread(self.engine.callback, request)

    async def logout(self, request: Any) -> Any:
        """See :meth:`Engine.logout`."""
        return await asyncio.to_thread(self.engine.logout, request)

    async def backchannel_logout(self, request: Any) -> Any:
        """See :meth:`Engine.backchannel_logout`."""
        return await asyncio.to_thread(self.engine.backchannel_logout, request)
