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
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from .config import Config, parse_bool, parse_words
from .errors import (
    ConfigError,
    KeycloakError,
    LoginError,
    OAuthError,
    TokenError,
    TokenStoreUnavailable,
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
_MEMO_SIZE = 4096  # identities and verdicts remembered per validated token
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
# A finished refresh keeps answering its session's later requests this long (see SingleFlight).
_REFRESH_LINGER = 5.0


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

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ConfigError(
                f"prefix must start with '/' and not end with one, got {self.prefix!r}",
                key="prefix",
            )

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
    if not target or any(ord(c) < 32 or c == "\\" for c in target):
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


def _quote_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class _Tenant:
    """One realm/client: its client and where its sessions' tokens live."""

    __slots__ = ("client", "name", "ready_validator", "realm", "store")

    def __init__(self, name: str, client: Client, store: TokenStore) -> None:
        self.name = name
        self.client = client
        self.store = store
        self.realm = client.config.realm
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
                server_store or self.plugins.token_store(client.config) or MemoryTokenStore()
            )
            self._tenants[name] = _Tenant(name, client, tenant_store)
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

    def _load_session(self, request: Any, adapter: Adapter, tenant: _Tenant) -> _Session | None:
        if self.cookies is not None:
            record = self.cookies.decode(adapter.cookies(request))
            return None if record is None else _Session(self.cookies.key_of(record), record)
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
            _log.info("a session's access token was refused, ending the session: %s", exc)
            self._end_session(request, adapter, tenant, found.key, headers)
            return None
        except KeycloakError as exc:
            raise _Unavailable(exc) from exc
        return self._identity(claims, request), record.tokens.access_token, claims

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
        tenant = self._tenant(request)
        url = adapter.url(request)
        target = safe_return_url(adapter.query(request).get("next"), url)
        try:
            login = tenant.client.login(
                _origin(url) + self.settings.callback_path,
                scopes=self.settings.scopes,
                remember=False,
            )
        except KeycloakError as exc:
            return self._unavailable(request, adapter, exc)
        session = adapter.session(request)
        now = time.time()
        pending = {
            state: entry
            for state, entry in dict(session.get(_LOGINS_KEY) or {}).items()
            if isinstance(entry, dict)
            and float(entry.get("created_at", 0)) + self.settings.login_ttl > now
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
            pending.pop(min(pending, key=lambda s: float(pending[s].get("created_at", 0))))
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
        pending = dict(session.get(_LOGINS_KEY) or {})
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
                created_at=float(entry.get("created_at", 0)),
            )
        except (KeyError, TypeError, ValueError):
            return self._page(request, adapter, 400, "This login link is invalid.")
        try:
            tokens = tenant.client.callback(code, str(state), login=login)
        except (TokenError, OAuthError, LoginError) as exc:
            _log.info("login callback refused: %s", exc)
            return self._page(request, adapter, 401, "Login failed. Please try again.")
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
        identity = self._identity(claims, request)
        self.plugins.after_login(request, tokens, identity)
        target = safe_return_url(str(entry.get("next") or ""), adapter.url(request))
        return adapter.redirect(request, target or self.settings.after_login_url, headers)

    def logout(self, request: Any) -> Any:
        """``POST {prefix}/logout``: end the session here and (by default) in Keycloak.

        GET answers 405 unless :attr:`EngineSettings.allow_get_logout`; a cross-site POST
        (``Origin`` of another site) answers 403.
        """
        adapter = self.plugins.adapter_for(request)
        method = adapter.method(request)
        if method != "POST" and not (method == "GET" and self.settings.allow_get_logout):
            return adapter.response(
                request, 405, b"Logout must be a POST.", _TEXT, [("Allow", "POST")]
            )
        url = adapter.url(request)
        origin = adapter.header(request, "origin")
        if method == "POST" and origin not in (None, "null") and origin != _origin(url):
            return self._page(request, adapter, 403, "Cross-site logout refused.")
        tenant = self._tenant(request)
        headers: list[tuple[str, str]] = [("Cache-Control", "no-store")]
        try:
            found = self._load_session(request, adapter, tenant)
            key = None if found is None else found.key
            self._end_session(request, adapter, tenant, key, headers)
        except TokenStoreUnavailable as exc:
            return self._unavailable(request, adapter, exc)
        record = found.record if found is not None else None
        identity = (
            self._identity(record.tokens.id_claims, request)
            if record is not None and record.tokens.id_claims is not None
            else None
        )
        self.plugins.after_logout(request, identity)
        after = _origin(url) + self.settings.after_logout_url
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

    def _login_redirect(
        self, request: Any, adapter: Adapter, headers: Sequence[tuple[str, str]] = ()
    ) -> Any:
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
        return adapter.response(
            request, status, message.encode(), _TEXT, [("Cache-Control", "no-store"), *headers]
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


def _bearer_token(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
