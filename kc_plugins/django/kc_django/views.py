"""The engine's endpoints as Django views (mounted by :mod:`kc_django.urls`).

Logout keeps Django's CSRF protection: post to it from a form with ``{% csrf_token %}``
(the engine also refuses a POST whose ``Origin`` is another site). The back-channel logout
is exempt: Keycloak posts logout tokens server to server, with no CSRF token, and the
token itself is validated (signature, issuer, audience, replay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from .apps import engine_of

__all__ = ["backchannel_logout", "callback", "login", "logout"]

View = TypeVar("View", bound=Callable[..., Any])


def _public(view: View) -> View:
    # Django 5.1's LoginRequiredMiddleware must let the login round trip through.
    try:
        from django.contrib.auth.decorators import login_not_required
    except ImportError:  # Django < 5.1
        return view
    marked: View = login_not_required(view)
    return marked


@_public
@require_GET
def login(request: HttpRequest) -> HttpResponseBase:
    """``GET {prefix}/login?next=/page``: start a login and redirect to Keycloak."""
    response: HttpResponseBase = engine_of().login(request)
    return response


@_public
@require_GET
def callback(request: HttpRequest) -> HttpResponseBase:
    """``GET {prefix}/callback``: Keycloak's answer; starts the session."""
    response: HttpResponseBase = engine_of().callback(request)
    return response


@_public
def logout(request: HttpRequest) -> HttpResponseBase:
    """``POST {prefix}/logout``: end the session here and in Keycloak.

    GET answers 405 unless ``KEYCLOAK_ALLOW_GET_LOGOUT``.
    """
    response: HttpResponseBase = engine_of().logout(request)
    return response


@_public
@csrf_exempt
def backchannel_logout(request: HttpRequest) -> HttpResponseBase:
    """``POST {prefix}/backchannel-logout``: Keycloak ends a session; end it here."""
    response: HttpResponseBase = engine_of().backchannel_logout(request)
    return response
