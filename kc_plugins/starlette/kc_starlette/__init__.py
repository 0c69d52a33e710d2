"""kc-starlette: Keycloak for Starlette and FastAPI, on kc-core's engine.

:class:`KeycloakMiddleware` (pure ASGI) serves login, callback, logout and back-channel
logout under ``/kc`` and puts the user on ``request.user`` (a :class:`KeycloakUser`) and the
credentials on ``request.auth``; :func:`login_required`, :func:`roles_required` and
:func:`bearer_required` protect Starlette endpoints, :func:`require_login`,
:func:`require_roles` and :func:`require_bearer` are FastAPI dependencies.
:class:`AuthenticationMiddleware` is the seed library's middleware, on the same engine.
"""

from .authentication import KeycloakBackend, KeycloakCredentials, KeycloakUser
from .config import engine_settings
from .errors import AccessRefused, RefusedHTTPException
from .middleware import AuthenticationMiddleware, KeycloakMiddleware, build_engine
from .protection import (
    bearer_required,
    engine_of,
    login_required,
    protect,
    require,
    require_bearer,
    require_login,
    require_roles,
    roles_required,
)
from .sessions import SealedSessionMiddleware

__all__ = [
    "AccessRefused",
    "AuthenticationMiddleware",
    "KeycloakBackend",
    "KeycloakCredentials",
    "KeycloakMiddleware",
    "KeycloakUser",
    "RefusedHTTPException",
    "SealedSessionMiddleware",
    "bearer_required",
    "build_engine",
    "engine_of",
    "engine_settings",
    "login_required",
    "protect",
    "require",
    "require_bearer",
    "require_login",
    "require_roles",
    "roles_required",
]

__version__ = "0.1.0"
