"""``KeycloakMiddleware``: the Keycloak user on ``request.user``, computed on first access.

Like Django's ``AuthenticationMiddleware`` (which it replaces), it puts a lazy
``request.user`` on every request: nothing is looked up unless the view, a template or a
decorator asks. A bearer token (``Authorization: Bearer``) or the login session both
work. Place it after ``SessionMiddleware``::

    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        ...
        "kc_django.middleware.KeycloakMiddleware",
        ...
    ]

After the view, headers the engine asked for (token cookies refreshed in cookie mode) are
added to the response. A refusal raised as :class:`~kc_django.refusals.AccessRefused` gets
kc's 403 page unless the project has a ``handler403`` or a ``403.html`` template.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase

from .apps import app_config
from .authentication import REQUEST_ATTRIBUTE, LazyUser, RequestAuthentication
from .plugin import add_headers
from .refusals import AccessRefused, forbidden_page, project_page

__all__ = ["KeycloakMiddleware"]


class KeycloakMiddleware:
    """Put the Keycloak user on ``request.user`` (lazily) and keep the engine's guard for
    the decorators (see :mod:`kc_django.authentication`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self._app = app_config()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        authentication = RequestAuthentication(request, self._app.runtime)
        setattr(request, REQUEST_ATTRIBUTE, authentication)
        user: Any = LazyUser(authentication.user)
        request.user = user
        request.auser = authentication.auser  # Django 5's accessor for async views
        response = self.get_response(request)
        guard = authentication.guard
        if guard is not None and guard.headers and guard.response is None:
            add_headers(response, guard.headers)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """kc's 403 page for a refusal, unless the project renders 403s itself."""
        if isinstance(exception, AccessRefused) and not project_page(request):
            return forbidden_page(request, exception.reason)
        return None
