"""The engine's endpoints as Pyramid views, and the forbidden view answering as the engine.

Route names: ``keycloak.login``, ``keycloak.callback``, ``keycloak.logout`` and
``keycloak.backchannel_logout`` (for ``request.route_url``).
"""

from __future__ import annotations

from typing import Any

from kc_core.adapters import ENDPOINTS, endpoint_view

from .security import KeycloakDenied, engine_of, guard_of

__all__ = [
    "backchannel_logout_view",
    "callback_view",
    "forbidden_view",
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
