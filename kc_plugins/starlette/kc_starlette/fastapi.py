"""FastAPI dependencies that declare their security, so ``/docs`` can log in through Keycloak.

:class:`KeycloakSecurity` makes the dependencies of :mod:`kc_starlette.protection`
(``require_login``, ``require_roles``, ``require_bearer``, ``require``) FastAPI security
schemes: ``/openapi.json`` then has ``components.securitySchemes`` (OpenID Connect, whose
discovery URL Swagger UI reads, or an OAuth2 authorization-code flow with the endpoints of
Keycloak's discovery) and a ``security`` requirement on every route using one, and Swagger
UI shows its Authorize button and the locks. The checks themselves are kc's, unchanged. ::

    from fastapi import Depends, FastAPI
    from kc_starlette.fastapi import KeycloakSecurity

    keycloak = KeycloakSecurity(config)
    app = FastAPI(swagger_ui_init_oauth=keycloak.swagger_ui_init_oauth("kc-docs"))

    @app.get("/api/reports")
    async def reports(user=Depends(keycloak.require_bearer(roles=["kc-api:reader"]))): ...

Swagger UI logs in with a *public* client using PKCE (``kc-docs`` above): its redirect URI
``https://app.example/docs/oauth2-redirect`` allowed, and its tokens accepted by the API
(``KEYCLOAK_AUTHORIZED_PARTIES=kc-docs``, or an audience mapper on that client).
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency's annotations at
# run time, and an instance's ``__call__`` gives it no module globals to resolve strings in.

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import (
    OAuthFlowAuthorizationCode,
    OAuthFlows,
    OpenIdConnect,
    SecurityBase,
)
from fastapi.security.base import SecurityBase as SecurityScheme
from starlette.authentication import BaseUser
from starlette.requests import Request

from kc_core import Client, Config
from kc_core.adapters import RequirementShorthands
from kc_core.engine import Requirement

from .protection import require

__all__ = ["KeycloakDependency", "KeycloakSecurity"]

_DEFAULT_SCOPES = ("openid", "profile", "email")


class KeycloakDependency(SecurityScheme):
    """One of kc's FastAPI dependencies, declared to OpenAPI as ``scheme_name``'s scheme.

    Calling it runs kc's check (:func:`kc_starlette.require`) and returns ``request.user``;
    a refusal is kc's answer (401 with ``WWW-Authenticate``, 403, 503, login redirect).
    """

    def __init__(
        self,
        model: SecurityBase,
        scheme_name: str,
        check: Callable[[Request], Awaitable[BaseUser]],
    ) -> None:
        self.model = model
        self.scheme_name = scheme_name
        self._check = check

    async def __call__(self, request: Request) -> BaseUser:
        return await self._check(request)


class KeycloakSecurity(RequirementShorthands[KeycloakDependency]):
    """The Keycloak realm as an OpenAPI security scheme, and kc's dependencies declaring it.

    ``require_login``, ``require_roles`` and ``require_bearer`` are those of
    :mod:`kc_starlette.protection`, each a :class:`KeycloakDependency` declaring the scheme.

    Args:
        source: a :class:`~kc_core.Config` (or :class:`~kc_core.Client`) of the realm, or
            its issuer URL (``https://sso.example/realms/shop``).
        oauth2: declare an OAuth2 authorization-code flow instead of OpenID Connect, with
            the authorization and token endpoints (and scopes) of the realm's discovery
            document, read once here (needs a ``Config`` or ``Client``; raises
            ``KeycloakError`` when Keycloak is unreachable). OpenID Connect (the default)
            needs no request: Swagger UI reads the discovery document itself.
        scheme_name: the scheme's key in ``components.securitySchemes``.
        description: shown by Swagger UI in the Authorize dialog.
    """

    def __init__(
        self,
        source: Config | Client | str,
        *,
        oauth2: bool = False,
        scheme_name: str = "keycloak",
        description: str | None = "Log in through Keycloak",
    ) -> None:
        super().__init__(self.require)
        self.scheme_name = scheme_name
        if isinstance(source, str):
            if oauth2:
                raise TypeError("oauth2=True reads discovery: pass a Config or a Client")
            issuer = source.rstrip("/")
        else:
            config = source.config if isinstance(source, Client) else source
            issuer = config.realm_url
        #: The realm's discovery document, as Swagger UI fetches it.
        self.discovery_url = f"{issuer}/.well-known/openid-configuration"
        self.model: SecurityBase
        if oauth2:
            assert not isinstance(source, str)
            self.model = _oauth2_model(source, description)
        else:
            self.model = OpenIdConnect(openIdConnectUrl=self.discovery_url, description=description)

    def require(self, requirement: Requirement) -> KeycloakDependency:
        """A dependency enforcing ``requirement`` (as :func:`kc_starlette.require`)."""
        return KeycloakDependency(self.model, self.scheme_name, require(requirement))

    def swagger_ui_init_oauth(
        self, client_id: str, *, scopes: Iterable[str] = _DEFAULT_SCOPES
    ) -> dict[str, Any]:
        """``FastAPI(swagger_ui_init_oauth=...)``: Swagger UI logs in as public client
        ``client_id`` with PKCE (no secret in the page), asking for ``scopes``."""
        return {
            "clientId": client_id,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": " ".join(scopes),
        }


def _oauth2_model(source: Config | Client, description: str | None) -> OAuth2Model:
    client = source if isinstance(source, Client) else Client(source)
    try:
        discovery = client.discovery
        supported = discovery.openid().get("scopes_supported")
        scopes = (
            {s: s for s in supported if isinstance(s, str)} if isinstance(supported, list) else {}
        )
        flow = OAuthFlowAuthorizationCode(
            authorizationUrl=discovery.endpoint("authorization_endpoint"),
            tokenUrl=discovery.endpoint("token_endpoint"),
            refreshUrl=discovery.endpoint("token_endpoint"),
            scopes=scopes,
        )
    finally:
        if client is not source:
            client.close()
    return OAuth2Model(flows=OAuthFlows(authorizationCode=flow), description=description)
