"""The :class:`Engine` facade: each public method resolves the request's adapter (and, on the
paths that do I/O, a :class:`~.context.Call`) once and hands it to the step that owns it.

A bearer token validated before is answered here, without a per-request context: a few
dictionary lookups, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..errors import KeycloakError, TokenError
from ..oidc import Client
from ..plugins import Adapter, Plugins
from ..stores import TokenStore
from ..stores.cookie import CookieTokenStore
from . import login as login_step
from . import logout as logout_step
from . import protection
from .answers import _forbidden, _unauthorized
from .authorization import Enforcer
from .bearer import BearerVerifier
from .context import Call, Tenant
from .logout import ReplayGuard
from .parts import Parts
from .settings import EngineSettings
from .values import Guard, Requirement

_ANY = Requirement()


class Engine(Parts):
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
        enforcer: an optional policy enforcer (:class:`~kc_core.enforcer.PolicyEnforcer`, or
            any object with its ``enforce`` method), asked after roles and scopes pass.
        verifier: how bearer tokens are judged (default: local JWT validation).

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
        enforcer: Enforcer | None = None,
        verifier: BearerVerifier | None = None,
    ) -> None:
        super().__init__(
            config,
            plugins=plugins,
            store=store,
            settings=settings,
            enforcer=enforcer,
            verifier=verifier,
        )
        self._replays = ReplayGuard()

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
        call = self.call(request, adapter)
        if path == s.login_path:
            return login_step.login(self, call)
        if path == s.callback_path:
            return login_step.callback(self, call)
        if path == s.logout_path:
            return logout_step.logout(self, call)
        if path == s.backchannel_logout_path:
            return logout_step.backchannel_logout(self, self._replays, call)
        return None

    # -- the no-I/O path ----------------------------------------------------------------------

    def _admit_bearer(
        self,
        request: Any,
        adapter: Adapter,
        tenant: Tenant,
        token: str,
        claims: Mapping[str, Any],
        requirement: Requirement,
        remember: bool = True,
    ) -> Guard:
        # ``remember``: the token was seen before, so its identity, guard and verdicts are
        # kept for its next requests; a token seen once (a first request) leaves nothing here.
        authorizer = self.authorizer
        if requirement.roles or requirement.scopes:
            client_id = tenant.client.config.client_id
            reason = authorizer.requirement_failure(
                token, claims, requirement, client_id, remember=remember
            )
            if reason is not None:
                return Guard(response=_forbidden(self.call(request, adapter), reason, True))
        if authorizer.enforcer is not None:
            denied = authorizer.enforce(self.call(request, adapter), claims, token)
            if denied is not None:
                return Guard(response=denied)
        if remember:
            return self.identities.bearer_guard(token, claims, request)
        return self._first_seen_guard(request, token, claims)

    def _first_seen_guard(self, request: Any, token: str, claims: Mapping[str, Any]) -> Guard:
        # Built, not kept: a token's first request may be its only one.
        identity = self.plugins.build_identity(claims, request)
        return Guard(identity=identity, token=token, claims=claims, bearer=True)

    def _judge_bearer(
        self,
        request: Any,
        adapter: Adapter,
        tenant: Tenant,
        authorization: str,
        requirement: Requirement | None,
        offline_only: bool,
    ) -> Guard | None:
        """The single tenant's JWT bearer path in one pass: a token validated before, else
        validated now (with ``offline_only``, only if that needs no I/O: else ``None``).

        ``requirement`` ``None``: authenticate only (a refused token is a visitor).
        """
        token = self.bearer.token_of(authorization)
        if token is None:
            if requirement is None:
                return Guard()
            reason = "the Authorization header is not a Bearer token"
            return Guard(response=_unauthorized(self.call(request, adapter), reason))
        validator = tenant.ready_validator
        claims = None if validator is None else validator.cached(token)
        remember = claims is not None
        if claims is None:
            if offline_only and (validator is None or not validator.validates_offline(token)):
                return None
            try:
                claims = tenant.validate(token)
            except TokenError as exc:  # a KeycloakError too: caught first
                if requirement is None:
                    return Guard()  # authenticate: a refused token is a visitor
                return protection.bearer_refusal(self.call(request, adapter), exc)
            except KeycloakError as exc:
                return protection.bearer_refusal(self.call(request, adapter), exc)
        if requirement is None:
            if remember:
                return self.identities.bearer_guard(token, claims, request)
            return self._first_seen_guard(request, token, claims)
        return self._admit_bearer(request, adapter, tenant, token, claims, requirement, remember)

    def _protect_locally(self, request: Any, requirement: Requirement) -> Guard | None:
        """:meth:`protect`'s answer when it needs no I/O (an exempt path, a bearer token
        validated before or whose key is loaded, a malformed one), else ``None``: one
        pass, for async callers on their loop."""
        tenant = self._single
        if tenant is None:
            return None
        adapter = self.plugins.adapter_for(request)
        path = adapter.path(request)
        if self.is_exempt(path) or self.routes.exempt(adapter, request, path):
            return Guard()
        authorization = adapter.header(request, "authorization")
        if authorization is None or not self.bearer.jwt or self.authorizer.enforcer is not None:
            found = None if authorization is None else self.bearer.cached(tenant, authorization)
            if found is None:
                return None
            return self._admit_bearer(request, adapter, tenant, found[0], found[1], requirement)
        return self._judge_bearer(request, adapter, tenant, authorization, requirement, True)

    def remembered(self, authorization: str) -> Guard | None:
        """The guard of the bearer token in ``authorization`` if it was admitted before
        and is still valid (its claims still cached, its key still published), else ``None``.

        What :meth:`authenticate` answers for such a request, without the request: for an
        adapter that read the header itself, on every request. No hook, no I/O; one tenant
        and local JWT validation only (otherwise always ``None``).
        """
        tenant = self._single
        if tenant is None or not self.bearer.jwt:
            return None
        token = self.bearer.seen(authorization)
        validator = tenant.ready_validator
        if token is None or validator is None:
            return None
        claims = validator.cached(token)
        return None if claims is None else self.identities.remembered(token, claims)

    def admits(self, authorization: str, requirement: Requirement) -> Guard | None:
        """:meth:`remembered`'s guard if ``requirement`` admitted it before, else ``None``.

        What :meth:`protect` answers for a bearer token seen before on a route it passed
        (its claims, hence their verdict, unchanged), from the header alone: no hook, no I/O.
        ``None`` sends the adapter to :meth:`protect`, which judges, keeps the verdict and
        answers refusals.
        """
        guard = self.remembered(authorization)
        return guard if guard is not None and self.passed(guard, requirement) else None

    def passed(self, guard: Guard, requirement: Requirement) -> bool:
        """Whether ``requirement`` admitted the bearer token of ``guard`` (a guard
        :meth:`remembered` answered for this request) before: its verdict is kept.

        Never with a policy enforcer: its decisions may depend on the request.
        """
        if self.authorizer.enforcer is not None or not guard.bearer:
            return False
        token, claims = guard.token, guard.claims
        return (
            token is not None
            and claims is not None
            and self.authorizer.passed(token, claims, requirement)
        )

    def _authenticate_locally(self, request: Any) -> Guard | None:
        """:meth:`authenticate`'s answer when it needs no I/O (a bearer token validated
        before or whose key is loaded, a malformed one), else ``None``."""
        tenant = self._single
        if tenant is None:
            return None
        adapter = self.plugins.adapter_for(request)
        authorization = adapter.header(request, "authorization")
        if authorization is None:
            return None
        if not self.bearer.jwt:
            found = self.bearer.cached(tenant, authorization)
            if found is None:
                return None
            return self.identities.bearer_guard(found[0], found[1], request)
        return self._judge_bearer(request, adapter, tenant, authorization, None, True)

    # -- protection -------------------------------------------------------------------------

    def protect(self, request: Any, requirement: Requirement = _ANY) -> Guard:
        """Authenticate ``request`` and check ``requirement``.

        A bearer token is validated locally (no network once its key is known); otherwise
        the session is used, refreshing its tokens silently when they are about to expire.
        Exempt paths (:attr:`EngineSettings.exempt_paths`), requests matching
        :attr:`EngineSettings.exempt_routes` and CORS preflights (unless
        :attr:`EngineSettings.pass_cors_preflight` is off) always pass, without identity.
        Returns a :class:`Guard` whose ``response`` is the 401/403/503 answer or the login
        redirect when the request may not proceed.
        """
        adapter = self.plugins.adapter_for(request)
        path = adapter.path(request)
        if self.is_exempt(path) or self.routes.exempt(adapter, request, path):
            return Guard()
        authorization = adapter.header(request, "authorization")
        if authorization is not None:
            tenant = self._single
            if tenant is not None:
                if self.bearer.jwt:
                    guard = self._judge_bearer(
                        request, adapter, tenant, authorization, requirement, False
                    )
                    assert guard is not None  # only offline_only answers None
                    return guard
                found = self.bearer.cached(tenant, authorization)
                if found is not None:
                    token, claims = found
                    return self._admit_bearer(request, adapter, tenant, token, claims, requirement)
            call = self.call(request, adapter)
            return protection.protect_bearer(self, call, authorization, requirement)
        if self.routes.preflight(adapter, request):
            return Guard()
        call = self.call(request, adapter)
        if requirement.bearer_only or self.bearer_only:
            # A bearer-only client has no sessions to look up and no login to send anyone to.
            return Guard(response=_unauthorized(call, None))
        return protection.protect_session(self, call, requirement)

    def authenticate(self, request: Any) -> Guard:
        """Who is behind ``request``, without requiring anyone: ``Guard.identity`` or ``None``.

        ``Guard.response`` is set only when Keycloak is needed and unreachable (503).
        """
        guard = self._authenticate_locally(request)
        if guard is not None:
            return guard
        return protection.authenticate(self, self.call(request))

    def authorize(self, request: Any, guard: Guard, requirement: Requirement = _ANY) -> Guard:
        """Check ``requirement`` for a request :meth:`authenticate` already answered.

        Middlewares authenticate every request once (to put the user on it); a protected
        route then only needs its own roles, scopes and policies checked against the same
        claims, without validating the token again. A ``guard`` without claims (a visitor,
        a refusal) gets the full :meth:`protect`.
        """
        claims = guard.claims
        if guard.response is not None or claims is None:
            return self.protect(request, requirement)
        tenant = self._single
        if not (requirement.bearer_only and not guard.bearer) and self.authorizer.enforcer is None:
            # Nothing to ask and no answer to build unless the roles or scopes are missing;
            # what passes here passes on an exempt path too, so the path is read only after.
            if not (requirement.roles or requirement.scopes):
                return guard
            if tenant is None:
                tenant = self._tenant(request)
            client_id = tenant.client.config.client_id
            token = guard.token or ""
            # A bearer token's verdicts are kept from its second request on, as its guard.
            remember = not guard.bearer or self.identities.remembered(token, claims) is guard
            authorizer = self.authorizer
            reason = authorizer.requirement_failure(
                token, claims, requirement, client_id, remember=remember
            )
            if reason is None:
                return guard
        call = Call(request, self.plugins.adapter_for(request), self._tenant, tenant)
        return protection.authorize(self, call, guard, requirement)  # exempt paths pass there

    def refuse(self, request: Any, guard: Guard, reason: str, api: bool | None = None) -> Any:
        """The engine's refusal of a request the app's own rules denied (an ACL, a check).

        ``guard`` is what :meth:`authenticate` answered: its 503 stays a 503; a visitor gets
        the login redirect (browsers) or a JSON 401; a user gets a 403 (JSON for API clients
        and bearer tokens), saying ``reason``. ``api`` forces the kind, as in
        :class:`Requirement`.
        """
        if guard.response is not None:
            return guard.response
        return protection.refuse(self, self.call(request), guard, reason, api)

    def end_session(self, request: Any) -> list[tuple[str, str]]:
        """End ``request``'s session in this app only (a local logout; Keycloak's stays).

        Returns the headers to add to the response (cookie mode clears the token cookies).
        ``kc_after_logout`` is called, as for :meth:`logout`.

        Raises:
            TokenStoreUnavailable: the token store cannot be reached.
        """
        return logout_step.end_session(self, self.call(request))

    # -- endpoints ------------------------------------------------------------------------------

    def login(self, request: Any) -> Any:
        """``GET {prefix}/login?next=/page``: start a login and redirect to Keycloak.

        ``next`` must stay on this site (see :func:`safe_return_url`); otherwise the user
        lands on :attr:`EngineSettings.after_login_url`. Several logins may be pending at
        once (several tabs); each is single use.
        """
        return login_step.login(self, self.call(request))

    def callback(self, request: Any) -> Any:
        """``GET {prefix}/callback``: check state, exchange the code, start the session.

        An unknown, reused or missing ``state`` gets a 400 page; a refused code a 401 page;
        an unreachable Keycloak a 503. On success the session gets a new store key (and
        the framework session a new id) and the browser goes to the page first asked for.
        """
        return login_step.callback(self, self.call(request))

    def logout(self, request: Any) -> Any:
        """``POST {prefix}/logout``: end the session here and (by default) in Keycloak.

        GET answers 405 unless :attr:`EngineSettings.allow_get_logout`; a cross-site POST
        (``Origin`` of another site) answers 403.
        """
        return logout_step.logout(self, self.call(request))

    def backchannel_logout(self, request: Any) -> Any:
        """``POST {prefix}/backchannel-logout``: Keycloak ends a session; end it here.

        Implements OpenID Connect Back-Channel Logout 1.0: the ``logout_token`` is
        validated (signature, issuer, audience, ``events``, ``sid``/``sub``, no ``nonce``),
        refused when replayed, and every session it names ends. Answers 200, or 400 with a
        JSON error.
        """
        return logout_step.backchannel_logout(self, self._replays, self.call(request))
