"""View decorators: ``@login_required``, ``@roles_required(...)``, ``@bearer_required(...)``.

They ask the engine about the request once (:func:`~kc_pyramid.security.admit`: against the
answer the security policy already has, if any; no second token validation), and return
the engine's refusal: a login redirect for browsers, JSON 401 (with ``WWW-Authenticate``)
or 403 for APIs, 503 when Keycloak is needed and unreachable. They decorate a view
function taking ``request`` or ``(context, request)``, a method of a view class
(``self.request``), or go in ``config.add_view(..., decorator=login_required)`` /
``@view_config(decorator=...)``.
When the app has a forbidden view of its own, a 401 or 403 is raised as Pyramid's
``HTTPForbidden`` (carrying the engine's answer) for it, as refused permissions are;
otherwise the answer is returned as it is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pyramid.httpexceptions import HTTPForbidden  # type: ignore[import-untyped]

from kc_core.adapters import view_decorators
from kc_core.engine import Requirement

from .security import KeycloakDenied, admit
from .views import kc_answers_forbidden

__all__ = ["admit", "bearer_required", "login_required", "protect", "roles_required"]

View = TypeVar("View", bound=Callable[..., Any])


def protect(requirement: Requirement) -> Callable[[View], View]:
    """Protect a view with any :class:`~kc_core.engine.Requirement`.

    The decorators below are shorthands for it.
    """

    def decorate(view: View) -> View:
        parameters = _positional_parameters(view)
        if parameters[:1] == ["self"]:

            @functools.wraps(view)
            def protected_method(self: Any, *args: Any, **kwargs: Any) -> Any:
                refused = _refusal(self.request, requirement)
                return refused if refused is not None else view(self, *args, **kwargs)

            return cast("View", protected_method)

        if len(parameters) == 1:

            @functools.wraps(view)
            def protected_request_view(request: Any) -> Any:
                refused = _refusal(request, requirement)
                return refused if refused is not None else view(request)

            return cast("View", protected_request_view)

        @functools.wraps(view)
        def protected(context: Any, request: Any) -> Any:
            refused = _refusal(request, requirement)
            return refused if refused is not None else view(context, request)

        return cast("View", protected)

    return decorate


def _refusal(request: Any, requirement: Requirement) -> Any | None:
    """The engine's refusal to return; a 401 or 403 an app's forbidden view would answer is
    raised as ``HTTPForbidden`` for it, as refused permissions are."""
    refused = admit(request, requirement)
    if refused is None or kc_answers_forbidden(request):
        return refused
    if refused.status_code in (401, 403):
        raise HTTPForbidden(result=KeycloakDenied("refused by kc", refused))
    return refused


def _positional_parameters(view: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(view)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in signature.parameters.values() if p.kind in kinds]


login_required, roles_required, bearer_required = view_decorators(protect)
