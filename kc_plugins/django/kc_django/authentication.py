"""Who is behind a request: the engine's answer, computed once per request on first need.

:class:`~kc_django.middleware.KeycloakMiddleware` attaches a :class:`RequestAuthentication`
to every request; ``request.user`` asks it lazily, and so do the decorators, which then
check their requirement against the same claims (``Engine.authorize``) instead of
validating the token again. :func:`identity_of` and :func:`access_token_of` read it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty

from kc_core.adapters import RequestGuard
from kc_core.engine import Guard

from .apps import Runtime, app_config
from .users import ANONYMOUS

__all__ = ["RequestAuthentication", "access_token_of", "authentication_of", "identity_of"]

#: Attribute of the request holding its :class:`RequestAuthentication`.
REQUEST_ATTRIBUTE = "kc_authentication"


class RequestAuthentication(RequestGuard):
    """The engine's guard for one request (``Engine.authenticate``), computed on first need;
    :meth:`user` is ``request.user``: a local ``User``, a
    :class:`~kc_django.users.KeycloakUser`, or the anonymous user."""

    __slots__ = ("_request", "runtime")

    def __init__(self, request: HttpRequest, runtime: Runtime) -> None:
        super().__init__(runtime.engine, request)
        self.runtime = runtime

    @property
    def request(self) -> HttpRequest:
        """The request (held weakly: it holds this object)."""
        request = self._request()
        if request is None:
            raise RuntimeError("request.user was first read after its request had ended")
        return request

    @request.setter
    def request(self, request: HttpRequest) -> None:
        # Weak: a reference back from here would make every request a reference cycle,
        # freed only by the garbage collector (a cost that grows with each request's size).
        self._request = weakref.ref(request)

    async def auser(self) -> Any:
        """``await request.auser()`` in async views: :meth:`user` in a worker thread."""
        return await sync_to_async(self.user)()

    def find_user(self, guard: Guard) -> Any:
        identity = guard.identity
        if identity is None or guard.response is not None:
            return ANONYMOUS
        keycloak = self.runtime.keycloak_user(identity, guard.token)
        backend = self.runtime.backend
        if backend is None:
            return keycloak
        claims = guard.claims if guard.claims is not None else getattr(identity, "claims", {})
        local = backend.user_for_claims(self.request, claims)
        if local is None:
            return ANONYMOUS
        # Keycloak's roles on the local user too: request.user.has_role(...) either way.
        local.keycloak, local.has_role = keycloak, keycloak.has_role  # type: ignore[attr-defined]
        return local


class LazyUser(SimpleLazyObject):
    """``request.user`` as Django's ``SimpleLazyObject``, made for every request: set up
    directly, without the trips through ``LazyObject``'s Python-level ``__getattribute__``
    and ``__setattr__`` that its ``__init__`` takes."""

    def __init__(self, func: Callable[[], Any]) -> None:
        object.__setattr__(self, "_setupfunc", func)
        object.__setattr__(self, "_wrapped", empty)


def authentication_of(request: HttpRequest) -> RequestAuthentication:
    """The request's :class:`RequestAuthentication` (attached now if no middleware did).

    Raises:
        ImproperlyConfigured: ``kc_django`` is not in ``INSTALLED_APPS``.
    """
    found = getattr(request, REQUEST_ATTRIBUTE, None)
    if not isinstance(found, RequestAuthentication):
        found = RequestAuthentication(request, app_config().runtime)
        setattr(request, REQUEST_ATTRIBUTE, found)
    return found


def identity_of(request: HttpRequest) -> Any:
    """The kc identity of the request's user (:class:`kc_core.engine.Identity` unless a
    ``kc_build_identity`` hook says otherwise), or ``None`` for a visitor."""
    return authentication_of(request).identity()


def access_token_of(request: HttpRequest) -> str | None:
    """The access token of the request's user, or ``None`` for a visitor.

    Use it to call another API on the user's behalf (``Authorization: Bearer ...``).
    """
    return authentication_of(request).token()
