"""kc-flask: Keycloak for Flask, on kc-core's engine.

``Keycloak(app)`` mounts login, callback, logout and back-channel logout routes (under
``/kc``); :func:`login_required`, :func:`roles_required` and :func:`bearer_required` protect
views; :data:`current_user` is the user behind a request. :class:`AuthenticationMiddleware`
is the seed library's WSGI middleware, on the same engine.
"""

from .decorators import (
    AnonymousUser,
    bearer_required,
    current_access_token,
    current_user,
    login_required,
    protect,
    roles_required,
)
from .extension import Keycloak, engine_of
from .middleware import AuthenticationMiddleware
from .sessions import SealedCookieSessionInterface

__all__ = [
    "AnonymousUser",
    "AuthenticationMiddleware",
    "Keycloak",
    "SealedCookieSessionInterface",
    "bearer_required",
    "current_access_token",
    "current_user",
    "engine_of",
    "login_required",
    "protect",
    "roles_required",
]

__version__ = "0.1.0"
