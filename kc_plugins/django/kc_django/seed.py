"""The earlier library's Django middleware, ``kc_django.AuthenticationMiddleware``.

Every page needs a Keycloak login, as with ``keycloak.extensions.django.AuthenticationMiddleware``
before: put it last in ``MIDDLEWARE`` (after ``SessionMiddleware``) and keep the earlier
settings::

    MIDDLEWARE = [..., "kc_django.AuthenticationMiddleware"]
    KEYCLOAK_CALLBACK_URL = "http://localhost:8000/kc/callback"
    KEYCLOAK_LOGIN_REDIRECT_URI = "/home"
    KEYCLOAK_LOGOUT_REDIRECT_URI = "/logout"
    KEYCLOAK_LOGOUT_URI = "/kc/logout"  # optional, the default

The client comes from ``keycloak.json`` (in ``BASE_DIR`` or the working directory) or the
other ``KEYCLOAK_*`` settings; ``"kc_django"`` need not be in ``INSTALLED_APPS``. Views read
``request.session["user"]`` (the userinfo as a JSON string). The behaviour is
:class:`kc_core.seed.SeedMiddleware`'s, shared with the Flask and Starlette ones.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponseBase, QueryDict

from kc_core.adapters import adapter_engine
from kc_core.engine import Engine
from kc_core.seed import SeedAction, SeedMiddleware

from .apps import with_django_adapter
from .config import client_config, project_values
from .plugin import add_headers

__all__ = ["AuthenticationMiddleware"]

#: The earlier library's setting names, read from ``settings``.
CALLBACK_URL, LOGIN_REDIRECT_URI = "KEYCLOAK_CALLBACK_URL", "KEYCLOAK_LOGIN_REDIRECT_URI"
LOGOUT_URI, LOGOUT_REDIRECT_URI = "KEYCLOAK_LOGOUT_URI", "KEYCLOAK_LOGOUT_REDIRECT_URI"


class AuthenticationMiddleware:
    """Require a Keycloak login for every page but the callback and the logout paths.

    Raises:
        ConfigError: a setting is missing (at start-up, when Django builds the middleware).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        values = project_values(django_settings)
        self.seed = SeedMiddleware(
            str(values.get(CALLBACK_URL) or "http://localhost:8000/kc/callback"),
            values.get(LOGIN_REDIRECT_URI),
            values.get(LOGOUT_URI),
            values.get(LOGOUT_REDIRECT_URI),
        )
        base_dir = getattr(django_settings, "BASE_DIR", None)
        self.engine: Engine = adapter_engine(
            with_django_adapter,
            lambda: client_config(values, base_dir=base_dir),
            lambda: self.seed.settings(values),
        )
        self.seed.install(self.engine)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        engine = self.engine
        response: Any = engine.route(request)
        if response is not None:
            return response  # type: ignore[no-any-return]
        action = self.seed.action(engine, request.path, request.session)
        if action is SeedAction.PASS:
            return self.get_response(request)
        if action is SeedAction.LOGOUT:
            return engine.logout(request)  # type: ignore[no-any-return]
        guard = engine.protect(request)
        if guard.allowed:
            return add_headers(self.get_response(request), guard.headers)
        if self.seed.must_log_in(engine, guard, request.session):
            # Straight to Keycloak, and back to the login redirect: the page's own query
            # must not choose where the user lands (the earlier behaviour).
            bare = copy.copy(request)
            bare.GET = QueryDict()
            return engine.login(bare)  # type: ignore[no-any-return]
        return guard.response  # type: ignore[no-any-return]
