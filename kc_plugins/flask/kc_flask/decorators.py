"""View decorators and ``current_user``: who is behind a request, and what they may do.

A protected view finds the user on ``g.kc_identity`` (and the access token on
``g.kc_token``); :data:`current_user` reads it anywhere, including templates, and is an
anonymous user on public pages of visitors who are not logged in.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, cast

from flask import after_this_request, current_app, g, has_request_context, request
from flask.wrappers import Response
from werkzeug.local import LocalProxy

from kc_core.adapters import AnonymousRoles, view_decorators
from kc_core.engine import Guard, Requirement

from .errors import refusal
from .extension import EXTENSION_KEY, _current_request, engine_of

__all__ = [
    "ENVIRON_IDENTITY",
    "ENVIRON_TOKEN",
    "AnonymousUser",
    "bearer_required",
    "current_access_token",
    "current_user",
    "login_required",
    "protect",
    "roles_required",
]

View = TypeVar("View", bound=Callable[..., Any])

#: Where :class:`~kc_flask.AuthenticationMiddleware` leaves the identity and token.
ENVIRON_IDENTITY = "kc.identity"
ENVIRON_TOKEN = "kc.token"


@dataclass(frozen=True, slots=True)
class AnonymousUser(AnonymousRoles):
    """The :data:`current_user` of a visitor who is not logged in (no roles)."""

    sub: str = ""
    username: str | None = None
    email: str | None = None
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    is_authenticated = False


_ANONYMOUS = AnonymousUser()


def protect(requirement: Requirement) -> Callable[[View], View]:
    """Protect a view with any :class:`~kc_core.engine.Requirement`.

    The decorators below are shorthands for it. A refused request gets the engine's answer:
    a login redirect for browsers, 401/403 JSON for APIs, 503 when Keycloak is unreachable.
    """

    def decorate(view: View) -> View:
        is_async = inspect.iscoroutinefunction(view)

        @functools.wraps(view)
        def protected(*args: Any, **kwargs: Any) -> Any:
            guard = engine_of().protect(_current_request(), requirement)
            if guard.response is not None:
                return refusal(guard.response)  # raised where app.errorhandler(403) takes it
            _remember(guard)
            return (current_app.ensure_sync(view) if is_async else view)(*args, **kwargs)

        return cast("View", protected)

    return decorate


def _remember(guard: Guard) -> None:
    """Put the guard's identity and token on ``g``, its headers on the view's response.

    The headers are refreshed token cookies: whatever the view answers must carry them.
    """
    context_globals = g._get_current_object()
    context_globals.kc_identity = guard.identity
    context_globals.kc_token = guard.token
    headers = guard.headers
    if headers:

        @after_this_request
        def add_headers(response: Response) -> Response:
            for name, value in headers:
                response.headers.add(name, value)
            return response


login_required, roles_required, bearer_required = view_decorators(protect)


def _load_current_user() -> Any:
    if not has_request_context():
        return _ANONYMOUS
    if "kc_identity" not in g:
        environ = request.environ  # where AuthenticationMiddleware leaves them
        guard = Guard(identity=environ.get(ENVIRON_IDENTITY), token=environ.get(ENVIRON_TOKEN))
        if guard.identity is None and EXTENSION_KEY in current_app.extensions:
            # A public page: look the visitor up once, without requiring a login.
            guard = engine_of().authenticate(_current_request())
        _remember(guard)
    identity = g.kc_identity
    return _ANONYMOUS if identity is None else identity


def current_access_token() -> str | None:
    """The access token of the current request's user, or ``None`` for a visitor.

    Use it to call another API on the user's behalf (``Authorization: Bearer ...``).
    """
    _load_current_user()
    token = g.get("kc_token") if has_request_context() else None
    return token if isinstance(token, str) else None


current_user: Any = LocalProxy(_load_current_user)
"""The user behind the current request: the identity (``kc_core.engine.Identity`` unless a
``kc_build_identity`` hook says otherwise) or an :class:`AnonymousUser`. Test
``current_user.is_authenticated``."""
