"""Protect routes: decorators for Starlette endpoints, dependencies for FastAPI.

Both ask the engine (:meth:`kc_core.engine.AsyncEngine.protect`), so a refused request gets
its answer: a login redirect for browsers, a JSON 401 with ``WWW-Authenticate`` for API
clients, a JSON 403 without the role, a 503 when Keycloak is needed and unreachable. An
admitted request finds the user on ``request.user`` and the token on ``request.auth.token``.
They need :class:`~kc_starlette.KeycloakMiddleware` (or :class:`~kc_starlette.KeycloakBackend`
for the decorators) in front of the app. A request without credentials on a bearer-only
route gets a copy of the engine's first such 401
(:class:`~kc_starlette.authentication.NoTokenRefusal`).
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from starlette.authentication import BaseUser
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from kc_core.adapters import RequirementShorthands, view_decorators
from kc_core.engine import Engine, Guard, Requirement

from .authentication import BACKEND_KEY, GUARD_KEY, KEPT_KEY, KeycloakBackend
from .errors import raise_if_handled, raise_refusal

__all__ = [
    "admit",
    "bearer_required",
    "engine_of",
    "login_required",
    "protect",
    "require",
    "require_bearer",
    "require_login",
    "require_roles",
    "roles_required",
]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Dependency = Callable[[Request], Awaitable[BaseUser]]


def _backend_of(connection: HTTPConnection) -> KeycloakBackend:
    backend = connection.scope.get(BACKEND_KEY)
    if not isinstance(backend, KeycloakBackend):
        raise RuntimeError(
            "kc-starlette is not installed on this app: add KeycloakMiddleware "
            "(app.add_middleware(KeycloakMiddleware, ...))"
        )
    return backend


def engine_of(connection: HTTPConnection) -> Engine:
    """The engine serving ``connection`` (for its :class:`~kc_core.Client`: ``.client``).

    Raises:
        RuntimeError: no kc middleware runs in front of the app.
    """
    return _backend_of(connection).engine.engine


def passed_before(scope: Any, requirement: Requirement) -> bool:
    """Whether the connection's remembered bearer token passed ``requirement`` before (its
    user is on the scope already): :func:`admit` would admit it again, asking nothing
    (:meth:`~kc_core.engine.Engine.passed`)."""
    kept = scope.get(KEPT_KEY)
    if kept is None or scope.get(GUARD_KEY) is not kept.guard:
        return False
    backend: KeycloakBackend = scope[BACKEND_KEY]
    return backend.engine.engine.passed(kept.guard, requirement)


async def admit(connection: HTTPConnection, requirement: Requirement) -> Response | None:
    """The engine's refusal for ``connection``, or ``None`` after putting the user on the scope."""
    scope = connection.scope
    backend = scope.get(BACKEND_KEY)
    if not isinstance(backend, KeycloakBackend):
        backend = _backend_of(connection)  # raises
    authenticated = scope.get(GUARD_KEY)
    if isinstance(authenticated, Guard):
        engine = backend.engine
        if (
            authenticated.claims is not None
            and authenticated.response is None
            and engine.engine.authorizer.enforcer is None
        ):
            # AsyncEngine.authorize's own shortcut, without its coroutine: no I/O to wait for.
            guard = engine.engine.authorize(connection, authenticated, requirement)
        else:
            guard = await engine.authorize(connection, authenticated, requirement)
    else:
        no_token = backend.no_token
        adapter = no_token.adapter_if_applies(connection, requirement)
        if adapter is not None:
            kept = no_token.answer(adapter)
            if kept is not None:
                return kept
        guard = await backend.engine.protect(connection, requirement)
        if adapter is not None:
            no_token.keep(adapter, guard)
    response: Response | None = guard.response
    if response is None:
        scope[GUARD_KEY] = guard  # what the next check of this request authorizes against
        backend.admit(scope, guard)
    return response


def _connection_in(args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
    for value in itertools.chain(args, kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise TypeError("a protected endpoint takes the request as an argument")


def protect(requirement: Requirement) -> Callable[[Endpoint], Endpoint]:
    """Protect a Starlette endpoint (``async def`` or ``def``) with any ``Requirement``.

    The decorators below are shorthands for it. A plain ``def`` endpoint still runs in
    Starlette's thread pool; the check itself runs on the event loop.
    """

    def decorate(endpoint: Endpoint) -> Endpoint:
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def protected(*args: Any, **kwargs: Any) -> Any:
            first = args[0] if args else None
            # The type first: an isinstance of HTTPConnection (an ABC) costs more.
            if type(first) is Request or isinstance(first, HTTPConnection):
                connection: HTTPConnection = first
            else:
                connection = _connection_in(args, kwargs)
            if not passed_before(connection.scope, requirement):
                refused = await admit(connection, requirement)
                if refused is not None:
                    raise_if_handled(connection, refused)  # the app's handler answers, if any
                    return refused
            if is_async:
                return await endpoint(*args, **kwargs)
            return await run_in_threadpool(endpoint, *args, **kwargs)

        return cast("Endpoint", protected)

    return decorate


login_required, roles_required, bearer_required = view_decorators(protect)


# -- FastAPI -----------------------------------------------------------------------------------


def require(requirement: Requirement) -> Dependency:
    """A FastAPI dependency enforcing ``requirement``; it returns ``request.user``.

    A refusal is raised as :class:`~kc_starlette.AccessRefused` and answered by the app's
    exception handling, inside every middleware (CORS headers included). Example::

        @app.get("/admin")
        async def admin(user: BaseUser = Depends(require_roles("realm:admin"))): ...
    """

    async def dependency(request: Request) -> BaseUser:
        if not passed_before(request.scope, requirement):
            refused = await admit(request, requirement)
            if refused is not None:
                raise_refusal(request, refused)
        user: BaseUser = request.scope["user"]
        return user

    return dependency


# FastAPI dependencies: a logged-in user, a role, a bearer token only (as the decorators).
_SHORTHANDS = RequirementShorthands(require)
require_login = _SHORTHANDS.require_login
require_roles = _SHORTHANDS.require_roles
require_bearer = _SHORTHANDS.require_bearer
