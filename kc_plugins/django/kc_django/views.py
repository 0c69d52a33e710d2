"""The engine's endpoints as Django views (mounted by :mod:`kc_django.urls`).

Logout keeps Django's CSRF protection: post to it from a form with ``{% csrf_token %}``
(the engine also refuses a POST whose ``Origin`` is another site). The back-channel logout
is exempt: Keycloak posts logout tokens server to server, with no CSRF token, and the
token itself is validated (signature, issuer, audience, replay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib.auth import decorators as auth_decorators
from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from kc_core.adapters import ENDPOINTS, Endpoint, endpoint_view

from .apps import engine_of

__all__ = ["backchannel_logout", "callback", "login", "logout"]

View = TypeVar("View", bound=Callable[..., Any])


def _public(view: View) -> View:
    # Django 5.1's LoginRequiredMiddleware must let the login round trip through.
    mark = getattr(auth_decorators, "login_not_required", None)  # None before Django 5.1
    return view if mark is None else cast("View", mark(view))


def _endpoint_view(endpoint: Endpoint) -> Callable[[HttpRequest], HttpResponseBase]:
    view = endpoint_view(endpoint, engine_of, endpoint.name)
    if endpoint.get_only:  # logout answers GET itself: 405 unless KEYCLOAK_ALLOW_GET_LOGOUT
        view = require_GET(view)
    if endpoint.server_to_server:
        view = csrf_exempt(view)
    return _public(view)


login, callback, logout, backchannel_logout = (_endpoint_view(e) for e in ENDPOINTS)
