"""The engine's endpoints as Pyramid views, and the forbidden view answering as the engine.

Route names: ``keycloak.login``, ``keycloak.callback``, ``keycloak.logout`` and
``keycloak.backchannel_logout`` (for ``request.route_url``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kc_core.adapters import ENDPOINTS, Endpoint

from .security import KeycloakDenied, engine_of, guard_of

__all__ = [
    "backchannel_logout_view",
    "callback_view",
    "forbidden_view",
    "login_view",
    "logout_view",
]


def _endpoint_view(endpoint: Endpoint) -> Callable[[Any], Any]:
    def view(request: Any) -> Any:
        return endpoint.serve(engine_of(request), request)

    view.__name__ = view.__qualname__ = f"{endpoint.name}_view"
    view.__doc__ = f"``{{prefix}}/{endpoint.path}``: the engine's {endpoint.name} endpoint."
    return view


login_view, callback_view, logout_view, backchannel_logout_view = (
    _endpoint_view(e) for e in ENDPOINTS
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
