"""The engine's endpoints as Pyramid views, and the forbidden view answering as the engine.

Route names: ``keycloak.login``, ``keycloak.callback``, ``keycloak.logout`` and
``keycloak.backchannel_logout`` (for ``request.route_url``).

A refusal is raised as ``HTTPForbidden`` only when the app has a view of its own for it:
while :func:`forbidden_view` is the one Pyramid would pick, the refusal is returned as it
is (:func:`kc_answers_forbidden`), which spares Pyramid's exception view machinery on
every refused request. :func:`kc_secured_view` does so for ``permission=``.
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPForbidden  # type: ignore[import-untyped]
from pyramid.interfaces import (  # type: ignore[import-untyped]
    IExceptionViewClassifier,
    IRequest,
    ISecurityPolicy,
    IView,
)
from zope.interface import implementedBy  # type: ignore[import-untyped]

from kc_core.adapters import ENDPOINTS, endpoint_view

from .security import KeycloakDenied, KeycloakSecurityPolicy, admit, engine_of, guard_of

__all__ = [
    "backchannel_logout_view",
    "callback_view",
    "forbidden_view",
    "kc_answers_forbidden",
    "kc_secured_view",
    "login_view",
    "logout_view",
]


login_view, callback_view, logout_view, backchannel_logout_view = (
    endpoint_view(e, engine_of, f"{e.name}_view") for e in ENDPOINTS
)


def forbidden_view(exc: Any, request: Any) -> Any:
    """Pyramid's ``HTTPForbidden`` answered as the engine answers.

    A permission the security policy refused carries the engine's answer; any other
    ``HTTPForbidden`` (raised by the app) gets the engine's refusal for the request: the
    login redirect or JSON 401 for a visitor, a 403 for a user, 503 when Keycloak is down.
    """
    result = getattr(exc, "result", None)
    if isinstance(result, KeycloakDenied):
        return result.response
    reason = getattr(exc, "detail", None) or "access refused"
    return engine_of(request).refuse(request, guard_of(request), str(reason))


_FORBIDDEN = implementedBy(HTTPForbidden)


def kc_answers_forbidden(request: Any) -> bool:
    """Whether Pyramid would answer an ``HTTPForbidden`` raised for ``request`` with
    :func:`forbidden_view` (then kc may return its refusal instead of raising it).

    It is the exception view lookup Pyramid makes (zope's, cached until views change): an
    app's forbidden or exception view that applies (replacing kc's, for the request's route,
    or with predicates of its own) is found first, and the refusal is raised for it.
    """
    request_type = getattr(request, "request_iface", IRequest).combined
    view = request.registry.adapters.lookup(
        (IExceptionViewClassifier, request_type, _FORBIDDEN), IView, ""
    )
    return getattr(view, "__original_view__", view) is forbidden_view


def kc_secured_view(view: Any, info: Any) -> Any:
    """View deriver over Pyramid's ``secured_view``: its permission check, with kc's refusal
    returned as it is when :func:`forbidden_view` would answer it.

    Pyramid raises ``HTTPForbidden`` for every refused permission; kc's exception view then
    only returns the answer the refusal carries. A refusal an app's view answers is raised
    as Pyramid raises it; exception views, a security policy that is not kc's and
    ``debug_authorization`` (Pyramid logs each check) are left to Pyramid.
    """
    permissive = getattr(view, "__call_permissive__", None)  # set by Pyramid's secured_view
    permission = getattr(view, "__permission__", None)
    policy = info.registry.queryUtility(ISecurityPolicy)
    debugged = (info.settings or {}).get("debug_authorization")
    if permission is None or permissive is None or debugged or info.exception_only:
        return view
    if not isinstance(policy, KeycloakSecurityPolicy):
        return view

    # kc's own permits: a permission kc names a requirement for is judged here, with no
    # verdict object for an admitted request nor for a refusal kc's forbidden view answers.
    own_permits = type(policy).permits is KeycloakSecurityPolicy.permits

    def secured_by_kc(context: Any, request: Any) -> Any:
        requirement = policy.requirement(permission) if own_permits else None
        if requirement is not None:
            refused = admit(request, requirement)
            if refused is None:
                return permissive(context, request)
            if kc_answers_forbidden(request):
                return refused
            verdict: Any = policy.denial(permission, refused)
        else:
            verdict = policy.permits(request, context, permission)
            if verdict:
                return permissive(context, request)
            if isinstance(verdict, KeycloakDenied) and kc_answers_forbidden(request):
                return verdict.response
        # What Pyramid's secured_view raises, without asking the policy a second time.
        name = getattr(permissive, "__name__", permissive)
        raise HTTPForbidden(f"Unauthorized: {name} failed permission check", result=verdict)

    return secured_by_kc
