"""kc: the Keycloak integration kit for Python.

The public names are few: a :class:`Config`, a :class:`Client` (and its asyncio twin
:class:`AsyncClient`), a :class:`TokenValidator`, the authorization-services
:class:`AuthzClient` and :class:`PolicyEnforcer`, and the base errors. Everything else lives
in documented modules (:mod:`kc_core.errors`, :mod:`kc_core.jwks`, :mod:`kc_core.roles`, ...).
"""

from .aio import AsyncClient
from .config import Config
from .enforcer import PolicyEnforcer
from .errors import ConfigError, KeycloakError, TokenError
from .oidc import Client, LoginRequest, TokenSet
from .tokens import TokenValidator
from .uma import AuthzClient

__all__ = [
    "AsyncClient",
    "AuthzClient",
    "Client",
    "Config",
    "ConfigError",
    "KeycloakError",
    "LoginRequest",
    "PolicyEnforcer",
    "TokenError",
    "TokenSet",
    "TokenValidator",
]

__version__ = "0.1.0"
