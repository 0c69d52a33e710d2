"""kc-pyramid: Keycloak for Pyramid, on kc-core's engine.

``config.include("kc_pyramid")`` reads the ``keycloak.*`` settings, adds the login,
callback, logout and back-channel logout routes (under ``/kc``) and sets
:class:`KeycloakSecurityPolicy`: ``request.identity`` is the user, ``permission=`` on views
takes ``authenticated``, ``role:realm:admin``, ``scope:email`` or a name given to a
:class:`~kc_core.engine.Requirement`. :func:`login_required`, :func:`roles_required` and
:func:`bearer_required` protect views as decorators. Refusals are the engine's answers.
"""

from .config import client_config, engine_settings
from .decorators import admit, bearer_required, login_required, protect, roles_required
from .includeme import add_keycloak_permission, build_engine, includeme
from .security import (
    KeycloakDenied,
    KeycloakSecurityPolicy,
    engine_of,
    guard_of,
    principals_of,
    requirement_for,
)
from .sessions import SealedCookieSessionFactory

__all__ = [
    "KeycloakDenied",
    "KeycloakSecurityPolicy",
    "SealedCookieSessionFactory",
    "add_keycloak_permission",
    "admit",
    "bearer_required",
    "build_engine",
    "client_config",
    "engine_of",
    "engine_settings",
    "guard_of",
    "includeme",
    "login_required",
    "principals_of",
    "protect",
    "requirement_for",
    "roles_required",
]

__version__ = "0.1.0"
