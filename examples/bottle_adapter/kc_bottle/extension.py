"""The Bottle side: a Bottle plugin that routes kc's endpoints, protects routes and keeps
a small server-side session for each browser.

Bottle has no session of its own, so the adapter brings one: a random id in an ``HttpOnly``
cookie, the data in this process's memory. ``kc_session_rotate`` gives it a new id at login.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import bottle

from kc_core.engine import Engine, Guard, Requirement

__all__ = ["KeycloakPlugin", "current_identity", "request_session", "request_url"]

_SESSION = "kc_bottle.session"
_GUARD = "kc_bottle.guard"


class SessionStore:
    """Sessions of one app in this process: id -> (data, last use); idle ones expire.

    Pass another object with the same ``load``/``save``/``delete`` methods (backed by Redis,
    say) as ``KeycloakPlugin(sessions=...)`` to share sessions between processes.
    """

    def __init__(self, idle_timeout: float) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[dict[str, Any], float]] = {}
        self._idle_timeout = idle_timeout

    def load(self, session_id: str | None) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            entry = self._sessions.get(session_id or "")
            if entry is None or entry[1] + self._idle_timeout < now:
                return None
            return entry[0]

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            self._sessions = {
                k: v for k, v in self._sessions.items() if v[1] + self._idle_timeout >= now
            }
            self._sessions[session_id] = (data, now)

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)


class RequestSession:
    """The session of one request: its data, its id, and whether the cookie must be set."""

    def __init__(self, store: SessionStore, session_id: str | None) -> None:
        self.store = store
        loaded = store.load(session_id)
        self.id = session_id if loaded is not None else None
        self.data: dict[str, Any] = dict(loaded) if loaded is not None else {}
        self._original = dict(self.data)
        self.rotated = False

    def rotate(self) -> None:
        """A new id for the same data; the old id is forgotten (no session fixation)."""
        if self.id is not None:
            self.store.delete(self.id)
        self.id = None
        self.rotated = True

    def commit(self) -> str | None:
        """Save if needed; the id to send in a new cookie, ``""`` to delete the cookie (the
        session was emptied, by a logout), or ``None`` when the cookie stays as it is."""
        if not self.data:
            if self.id is None:
                return None
            self.store.delete(self.id)  # nothing left to keep: the browser forgets the id
            self.id = None
            return ""
        if self.data == self._original and not self.rotated:
            return None
        new_cookie = self.id is None
        if self.id is None:
            self.id = secrets.token_urlsafe(32)
        self.store.save(self.id, self.data)
        return self.id if new_cookie else None


def request_url(request: bottle.BaseRequest) -> str:
    """The URL as the server received it: its own scheme and the Host header.

    Unlike ``request.url``, no ``X-Forwarded-*`` header is read: any client may send them.
    Behind a proxy, set the engine's ``public_url`` (or have the proxy pass ``Host`` on).
    """
    environ = request.environ
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    path = quote(environ.get("SCRIPT_NAME", "") + request.path)
    query = environ.get("QUERY_STRING", "")
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


def request_session(request: bottle.BaseRequest) -> RequestSession:
    """The session :class:`KeycloakPlugin` opened for ``request``."""
    session = request.environ.get(_SESSION)
    if not isinstance(session, RequestSession):
        raise RuntimeError("kc needs the KeycloakPlugin installed on this Bottle app")
    return session


def current_identity() -> Any:
    """The user of the current request (``None`` on an unprotected or exempt route)."""
    guard = bottle.request.environ.get(_GUARD)
    return guard.identity if isinstance(guard, Guard) else None


class KeycloakPlugin:
    """Install on a Bottle app: ``app.install(KeycloakPlugin(engine))``.

    Serves the engine's endpoints under ``engine.settings.prefix`` and protects every route
    declared with ``kc=`` (``kc=True`` for any logged-in user, or a
    :class:`~kc_core.engine.Requirement`). ``protect_all`` protects every other route too,
    except the engine's exempt paths.
    """

    name = "kc"
    api = 2

    def __init__(
        self,
        engine: Engine,
        *,
        protect_all: Requirement | None = None,
        session_cookie: str = "kc_bottle_session",
        session_idle_timeout: float = 8 * 3600,
        sessions: SessionStore | None = None,
    ) -> None:
        from . import hooks  # here: hooks imports this module

        # The adapter registers its own hooks; the entry point serves engines used without it.
        self.engine = engine
        engine.plugins.ensure_registered(hooks, name="bottle")
        self.protect_all = protect_all
        self.session_cookie = session_cookie
        self.sessions = sessions if sessions is not None else SessionStore(session_idle_timeout)

    def setup(self, app: bottle.Bottle) -> None:
        prefix = self.engine.settings.prefix
        app.route(f"{prefix}/<endpoint>", ["GET", "POST"], self._endpoint, kc_endpoint=True)

    def _endpoint(self, endpoint: str) -> Any:
        response = self.engine.route(bottle.request)
        if response is None:
            raise bottle.HTTPError(404)
        return response

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        requirement = self._requirement(route)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = bottle.request
            session = RequestSession(self.sessions, request.get_cookie(self.session_cookie))
            request.environ[_SESSION] = session
            guard: Guard | None = None
            try:
                if requirement is not None:
                    guard = self.engine.protect(request, requirement)
                    request.environ[_GUARD] = guard
                    if guard.response is not None:
                        result = guard.response
                    else:
                        result = callback(*args, **kwargs)
                else:
                    result = callback(*args, **kwargs)
            except bottle.HTTPResponse as raised:
                self._finish(raised, session, guard)
                raise
            self._finish(result, session, guard)
            return result

        return wrapper

    def _requirement(self, route: bottle.Route) -> Requirement | None:
        if route.config.get("kc_endpoint"):
            return None
        declared = route.config.get("kc")
        if isinstance(declared, Requirement):
            return declared
        if declared is True:
            return Requirement()
        # The engine lets exempt paths (EngineSettings.exempt_paths) through by itself.
        return self.protect_all

    def _finish(self, result: Any, session: RequestSession, guard: Guard | None) -> None:
        target = result if isinstance(result, bottle.HTTPResponse) else bottle.response
        new_id = session.commit()
        if new_id == "":
            target.delete_cookie(self.session_cookie, path="/", httponly=True, samesite="lax")
        elif new_id is not None:
            target.set_cookie(
                self.session_cookie,
                new_id,
                path="/",
                httponly=True,
                samesite="lax",
                secure=urlsplit(request_url(bottle.request)).scheme == "https",
            )
        # Set-Cookie headers of a silent refresh (cookie mode) go on the app's own response.
        if guard is not None and guard.response is None:
            for name, value in guard.headers:
                target.add_header(name, value)
