"""The engine's parts, built once: tenants, where sessions live, the refresher, the bearer
verifier, the authorization step and the identity memo. Every step module works on these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ConfigError, KeycloakError
from ..oidc import Client
from ..plugins import Adapter, Plugins
from ..stores import TokenStore
from ..stores.cookie import CookieTokenStore
from ..stores.memory import MemoryTokenStore
from .authorization import Authorizer, Enforcer
from .bearer import BearerTokens, BearerVerifier, JwtVerifier
from .context import Call, Identities, Tenant, origin
from .online import OnlineVerifier
from .refresh import Refresher
from .routes import RouteRules
from .sessions import CookieSessions, ServerSessions, SessionBackend
from .settings import EngineSettings, public_origin


class Parts:
    """What an :class:`~kc_core.engine.Engine` is made of (see its arguments)."""

    def __init__(
        self,
        config: Config | Client | Mapping[str, Config | Client],
        *,
        plugins: Plugins | None = None,
        store: TokenStore | CookieTokenStore | None = None,
        settings: EngineSettings | None = None,
        enforcer: Enforcer | None = None,
        verifier: BearerVerifier | None = None,
    ) -> None:
        self.plugins = plugins if plugins is not None else Plugins()
        self.plugins.check()
        self.settings = settings or EngineSettings()
        #: The cookie store in cookie mode, else ``None``.
        self.cookies = store if isinstance(store, CookieTokenStore) else None
        server_store = None if isinstance(store, CookieTokenStore) else store
        tenants = config if isinstance(config, Mapping) else {"default": config}
        if not tenants:
            raise KeycloakError("the engine needs at least one configuration")
        self._tenants: dict[str, Tenant] = {}
        for name, value in tenants.items():
            client = value if isinstance(value, Client) else Client(value)
            tenant_store = (
                server_store
                or self.plugins.token_store(client.config)
                or _store_from_setting(self.settings.token_store, client.config)
            )
            origin = _pinned_origin(self.settings, client.config)
            self._tenants[name] = Tenant(name, client, tenant_store, origin)
        self._single = next(iter(self._tenants.values())) if len(self._tenants) == 1 else None
        #: Every tenant's client is bearer-only: no session can exist, nobody can log in.
        self.bearer_only = all(t.client.config.bearer_only for t in self._tenants.values())
        self._server_sessions = ServerSessions(self.settings)
        self.sessions: SessionBackend = (
            self._server_sessions if self.cookies is None else CookieSessions(self.cookies)
        )
        self.refresher = Refresher(self.sessions, self.plugins, self.settings)
        self.bearer = BearerTokens(verifier or _verifier_from(self.settings))
        if isinstance(self.bearer.verifier, OnlineVerifier):
            for tenant in self._tenants.values():
                self.bearer.verifier.check_store(tenant)
        self.authorizer = Authorizer(enforcer, self.settings.logout_path)
        self.identities = Identities(self.plugins)
        self.routes = RouteRules(self.settings)
        exempt = self.settings.exempt_paths
        self._exempt_prefixes = (
            f"{self.settings.prefix}/",
            *(p for p in exempt if p.endswith("/")),
        )
        self._exempt_exact = frozenset(p for p in exempt if not p.endswith("/"))

    @property
    def enforcer(self) -> Enforcer | None:
        """The policy enforcer asked after roles and scopes pass, if any."""
        return self.authorizer.enforcer

    @property
    def _issued_keys(self) -> Mapping[str, None]:
        """Store keys this engine created (tells a lost session from one ended here)."""
        return self._server_sessions.issued_keys

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` is one of the engine's endpoints or an exempt path.

        An exempt path matches exactly, or by prefix when it ends with ``/``.
        """
        return path.startswith(self._exempt_prefixes) or path in self._exempt_exact

    def _tenant(self, request: Any) -> Tenant:
        if self._single is not None:
            return self._single
        name = self.plugins.select_tenant(request)
        tenant = self._tenants.get(name or "")
        if tenant is None:
            raise KeycloakError(f"no tenant named {name!r} (kc_select_tenant)")
        return tenant

    def tenant_named(self, name: str) -> Tenant | None:
        """The tenant called ``name``, if any."""
        return self._tenants.get(name)

    def call(self, request: Any, adapter: Adapter | None = None) -> Call:
        """The per-request context of ``request`` (its tenant is selected on first use)."""
        if adapter is None:
            adapter = self.plugins.adapter_for(request)
        return Call(request, adapter, self._tenant, self._single)


def _verifier_from(settings: EngineSettings) -> BearerVerifier:
    """Local JWT validation, or the online checks the settings turn on."""
    if not (settings.bearer_introspection or settings.bearer_refuse_ended_sessions):
        return JwtVerifier()
    return OnlineVerifier(
        introspect=settings.bearer_introspection,
        ended_sessions=settings.bearer_refuse_ended_sessions,
        ttl=settings.bearer_check_ttl,
        max_entries=settings.bearer_check_cache_size,
    )


def _store_from_setting(setting: str, config: Config) -> TokenStore:
    """The store :attr:`EngineSettings.token_store` names, one prefix per realm and client."""
    if setting == "memory":
        return MemoryTokenStore()
    if setting.startswith(
        ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
    ):
        from ..stores.redis import RedisTokenStore  # the optional redis dependency

        return RedisTokenStore.from_url(setting, prefix=RedisTokenStore.prefix_for(config))
    raise ConfigError(
        f"token_store must be 'memory' or a redis:// URL, got {setting.split(':', 1)[0]!r}...",
        key="token_store",
    )


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
    pinned = public_origin(origin(config.redirect_uri), "redirect_uri")
    if settings.public_url is not None and pinned != settings.public_url:
        raise ConfigError(
            f"redirect_uri {config.redirect_uri!r} is not on public_url {settings.public_url!r}",
            key="redirect_uri",
        )
    return pinned
