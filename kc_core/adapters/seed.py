"""What the seed middlewares (every page needs a login) decide for a request.

:class:`SeedAction` is what to do with it, :func:`needs_login` whether a refusal only wants a
login, :func:`seed_guard` an async middleware's whole decision; :data:`SEED_ARGUMENTS`
documents the middlewares' arguments. :class:`kc_core.seed.SeedMiddleware` holds the rest.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..engine.values import Guard

if TYPE_CHECKING:
    from ..engine import AsyncEngine, Engine
    from ..seed import SeedMiddleware


def needs_login(engine: Engine, guard: Guard) -> bool:
    """Whether the engine refused a request only for want of a login, sending it to log in.

    That is its login redirect (to ``{prefix}/login``), answered to a browser without a
    session: not an API client's 401, a 403, a 503 or the login-loop breaker's page. The
    seed middlewares then send the browser straight to Keycloak instead.
    """
    response = guard.response
    if response is None or guard.identity is not None:
        return False
    # Every framework's response headers read case-insensitively with .get().
    read = getattr(getattr(response, "headers", None), "get", None)
    location = read("Location") if callable(read) else None
    if not isinstance(location, str):
        return False
    # The app's mount point (a proxy's path prefix) may come before the login path.
    path, query = location.partition("?")[::2]
    return bool(query) and path.startswith("/") and path.endswith(engine.settings.login_path)


SEED_ARGUMENTS = """The seed middlewares' arguments, the same in every adapter.

callback_url: where Keycloak sends the browser back; its path must end with ``/callback``
    (``/kc/callback``) and its directory also serves ``/login``, ``/logout`` and
    ``/backchannel-logout``. Only the path is used: the host is the request's.
redirect_uri: where the user lands after logging in.
logout_uri: a path that logs the user out (by GET or POST), then reaches the app.
exempt_paths: paths served without a login (a trailing ``/`` exempts a subtree).
client: a :class:`~kc_core.Config` or :class:`~kc_core.Client` instead of the app's settings.
store, plugins: as for :class:`~kc_core.engine.Engine`.
"""


class SeedAction(Enum):
    """What a seed middleware does with a request that is not one of the engine's endpoints."""

    #: Pass it to the app without a login (an exempt path; the logout page of a visitor).
    PASS = "pass"
    #: End the session here and in Keycloak (the logout page of a logged-in user).
    LOGOUT = "logout"
    #: Require a login (``Engine.protect``; see :func:`needs_login` for a refusal).
    PROTECT = "protect"


# -- async middlewares ------------------------------------------------------------------------


async def seed_guard(
    seed: SeedMiddleware,
    engine: AsyncEngine,
    request: Any,
    path: str,
    session: MutableMapping[str, Any],
    without_query: Callable[[], Any],
) -> Guard:
    """What an async seed middleware does at ``path`` (not one of the engine's endpoints).

    A guard with a ``response`` (the logout, a refusal, the login at Keycloak) is sent
    instead of the app; otherwise the app runs, for the guard's ``identity`` if it has one
    (else for whoever the session says). ``without_query()`` is ``request`` without its
    query string: a page's own query must not choose where the user lands after login.
    """
    action = seed.action(engine.engine, path, session)
    if action is SeedAction.PASS:
        return Guard()
    if action is SeedAction.LOGOUT:
        return Guard(response=await engine.logout(request))
    guard = await engine.protect(request)
    if seed.must_log_in(engine.engine, guard, session):
        return Guard(response=await engine.login(without_query()))  # straight to Keycloak
    return guard
