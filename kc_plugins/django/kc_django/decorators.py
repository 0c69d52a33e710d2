"""View decorators: ``login_required``, ``roles_required``, ``bearer_required``, ``protect``.

A refused request gets the engine's answer: a login redirect for browsers, a JSON 401 (with
``WWW-Authenticate``) or 403 for API clients, a 503 when Keycloak is needed and unreachable.
An admitted request finds the user on ``request.user``. Behind
:class:`~kc_django.middleware.KeycloakMiddleware`, a user the middleware already found is
checked against the view's requirement without validating the token again
(``Engine.authorize``); otherwise the view's check (``Engine.protect``) authenticates the
request, and ``request.user`` uses its answer. ``async def`` views work with every decorator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from kc_core.adapters import view_decorators
from kc_core.engine import Requirement

from .authentication import REQUEST_ATTRIBUTE, LazyUser, RequestAuthentication, authentication_of
from .plugin import add_headers
from .refusals import hand_over

__all__ = ["admit", "bearer_required", "login_required", "protect", "respond", "roles_required"]

View = TypeVar("View", bound=Callable[..., Any])
#: A refusal, or ``None`` and the headers to add to the view's response.
Admission = tuple[HttpResponseBase | None, tuple[tuple[str, str], ...]]


def admit(request: HttpRequest, requirement: Requirement) -> Admission:
    """The engine's refusal for ``request``, or ``None`` and the headers to add to the
    view's response (token cookies after a silent refresh in cookie mode).

    Raises:
        AccessRefused: a logged-in browser user is refused (Django's ``handler403`` renders
            it, see :mod:`kc_django.refusals`).
        ImproperlyConfigured: ``kc_django`` is not in ``INSTALLED_APPS``.
    """
    found: Any = getattr(request, REQUEST_ATTRIBUTE, None)
    attached = isinstance(found, RequestAuthentication)
    authentication: RequestAuthentication = found if attached else authentication_of(request)
    guard = authentication.admit(requirement)
    if guard.response is not None:
        return hand_over(request, guard.response, requirement), ()
    if not attached:
        # No KeycloakMiddleware: the protected view still sees the Keycloak user.
        user: Any = LazyUser(authentication.user)
        request.user = user
    return None, guard.headers


def protect(requirement: Requirement) -> Callable[[View], View]:
    """Protect a function view with any :class:`~kc_core.engine.Requirement`.

    The decorators below are shorthands for it.
    """

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def protected_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused, headers = await sync_to_async(admit)(request, requirement)
                if refused is not None:
                    return refused
                return add_headers(await view(request, *args, **kwargs), headers)

            return cast("View", protected_async)

        @functools.wraps(view)
        def protected(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            # respond() inlined: no closure per request.
            refused, headers = admit(request, requirement)
            if refused is not None:
                return refused
            response = view(request, *args, **kwargs)
            return add_headers(response, headers) if headers else response

        return cast("View", protected)

    return decorate


def respond(
    request: HttpRequest, requirement: Requirement, view: Callable[[], HttpResponseBase]
) -> HttpResponseBase:
    """The engine's refusal, else ``view()``'s response with the engine's headers added."""
    refused, headers = admit(request, requirement)
    if refused is not None:
        return refused
    response = view()
    return add_headers(response, headers) if headers else response


login_required, roles_required, bearer_required = view_decorators(protect)
