"""The engine's parts, built once: tenants, where sessions live, the refresher, the bearer
verifier, the authorization step and the identity memo. Every step module works on these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..errors import KeycloakError
from ..oidc import Client
from ..plugins import Adapter, Plugins
from ..stores import TokenStore
from ..stores.cookie import CookieTokenStore
from ..stores.memory import MemoryTokenStore
from .authorization import Authorizer, Enforcer
from .bearer import BearerTokens, BearerVerifier, JwtVerifier
from .context import Call, Identities, Tenant
from .refresh import Refresher
from .sessions import CookieSessions, ServerSessions, SessionBackend
from .settings import EngineSettings


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
                server_store or self.plugins.token_store(client.config) or MemoryTokenStore()
            )
            self._tenants[name] = Tenant(name, client, tenant_store)
        self._single = next(iter(self._tenants.values())) if len(self._tenants) == 1 else None
        self._server_sessions = ServerSessions(self.settings)
        self.sessions: SessionBackend = (
            self._server_sessions if self.cookies is None else CookieSessions(self.cookies)
        )
        self.refresher = Refresher(self.sessions, self.plugins)
        self.bearer = BearerTokens(verifier or JwtVerifier())
        self.authorizer = Authorizer(enforcer)
        self.identities = Identities(self.plugins)
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
