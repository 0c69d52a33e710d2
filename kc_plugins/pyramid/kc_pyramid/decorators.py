"""View decorators: ``@login_required``, ``@roles_required(...)``, ``@bearer_required(...)``.

They check the view's requirement against the engine's answer the security policy already
has for the request (:func:`~kc_pyramid.security.guard_of`; no second token validation) with
:meth:`kc_core.engine.Engine.authorize`, and return the engine's refusal: a login redirect
for browsers, JSON 401 (with ``WWW-Authenticate``) or 403 for APIs, 503 when Keycloak is
needed and unreachable. They decorate a view function taking ``request`` or
``(context, request)``, a method of a view class (``self.request``), or go in
``config.add_view(..., decorator=login_required)`` / ``@view_config(decorator=...)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast, overload

from kc_core.engine import Requirement

from .security import engine_of, guard_of, send_headers

__all__ = ["admit", "bearer_required", "login_required", "protect", "roles_required"]

View = TypeVar("View", bound=Callable[..., Any])


def admit(request: Any, requirement: Requirement) -> Any | None:
    """The engine's refusal of ``request`` under ``requirement``, or ``None`` to proceed."""
    guard = guard_of(request)
    if guard.response is not None:
        return guard.response  # Keycloak unreachable: asking again would wait again
    decided = engine_of(request).authorize(request, guard, requirement)
    if decided.response is not None:
        return decided.response
    if decided is not guard and decided.headers:
        send_headers(request, decided.headers)
    return None


def protect(requirement: Requirement) -> Callable[[View], View]:
    """Protect a view with any :class:`~kc_core.engine.Requirement`.

    The decorators below are shorthands for it.
    """

    def decorate(view: View) -> View:
        parameters = _positional_parameters(view)
        if parameters[:1] == ["self"]:

            @functools.wraps(view)
            def protected_method(self: Any, *args: Any, **kwargs: Any) -> Any:
                refused = admit(self.request, requirement)
                return refused if refused is not None else view(self, *args, **kwargs)

            return cast("View", protected_method)

        if len(parameters) == 1:

            @functools.wraps(view)
            def protected_request_view(request: Any) -> Any:
                refused = admit(request, requirement)
                return refused if refused is not None else view(request)

            return cast("View", protected_request_view)

        @functools.wraps(view)
        def protected(context: Any, request: Any) -> Any:
            refused = admit(request, requirement)
            return refused if refused is not None else view(context, request)

        return cast("View", protected)

    return decorate


def _positional_parameters(view: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(view)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in signature.parameters.values() if p.kind in kinds]


@overload
def login_required(view: View) -> View: ...
@overload
def login_required(view: None = None, *, scopes: Iterable[str] = ()) -> Callable[[View], View]: ...
def login_required(
    view: View | None = None, *, scopes: Iterable[str] = ()
) -> View | Callable[[View], View]:
    """Require a logged-in user (session or bearer token).

    Browsers are sent to Keycloak's login page and come back to the page they asked for;
    API clients get 401. Use bare (``@login_required``) or with ``scopes=``.
    """
    decorate = protect(Requirement(scopes=tuple(scopes)))
    return decorate if view is None else decorate(view)


def roles_required(
    *roles: str, any_role: bool = False, scopes: Iterable[str] = ()
) -> Callable[[View], View]:
    """Require every role (or one of them, with ``any_role``); a user without it gets 403.

    A role is ``realm:NAME``, ``CLIENT:NAME`` or a bare ``NAME`` of this client, e.g.
    ``@roles_required("realm:admin")``.
    """
    return protect(Requirement.for_roles(roles, any_role=any_role, scopes=scopes))


@overload
def bearer_required(view: View) -> View: ...
@overload
def bearer_required(
    view: None = None,
    *,
    roles: Iterable[str] = (),
    any_role: bool = False,
    scopes: Iterable[str] = (),
) -> Callable[[View], View]: ...
def bearer_required(
    view: View | None = None,
    *,
    roles: Iterable[str] = (),
    any_role: bool = False,
    scopes: Iterable[str] = (),
) -> View | Callable[[View], View]:
    """Protect a JSON API: only an ``Authorization: Bearer`` token is accepted.

    Answers are JSON with a ``WWW-Authenticate`` challenge: 401 without a valid token, 403
    without the roles or scopes. Example::

        @view_config(route_name="orders", renderer="json")
        @bearer_required(roles=["kc-api:reader"])
        def orders(request): ...
    """
    decorate = protect(Requirement.for_bearer(roles, any_role=any_role, scopes=scopes))
    return decorate if view is None else decorate(view)
