"""kc's adapter hooks for Flask and Werkzeug requests (entry point ``kc_core`` → ``flask``).

Every Flask request is a Werkzeug request, so one adapter serves both the extension (inside a
Flask request context, where the session is :data:`flask.session`) and the WSGI middleware
(outside it, where the request carries the session it opened: :class:`SessionBoundRequest`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from flask import current_app
from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request as FlaskRequest
from flask.wrappers import Response
from werkzeug.wrappers import Request

from kc_core.adapters import response_hooks, wsgi_environ_key
from kc_core.plugins import hookimpl

__all__ = ["SessionBoundRequest"]


class SessionBoundRequest(FlaskRequest):
    """A Flask request that carries the session opened for it outside Flask's context.

    The middleware opens the session with the app's session interface, binds it here and
    saves it into the response itself.
    """

    kc_session: SessionMixin
    kc_session_interface: SessionInterface

    def bind_session(self, session: SessionMixin, interface: SessionInterface) -> None:
        """Attach the session (and the interface that opened it) to this request."""
        self.kc_session = session
        self.kc_session_interface = interface


@hookimpl
def kc_request_types() -> Sequence[type]:
    return (Request,)


@hookimpl
def kc_request_method(request: Request) -> str:
    return request.method


@hookimpl
def kc_request_url(request: Request) -> str:
    return request.url


@hookimpl
def kc_request_path(request: Request) -> str:
    return request.path


@hookimpl
def kc_request_query(request: Request) -> Mapping[str, str]:
    # A MultiDict: indexing gives the first value, as the hook promises.
    return request.args


@hookimpl
def kc_request_header(request: Request, name: str) -> str | None:
    # Straight from the WSGI environ: no header object is built on the hot path.
    value: str | None = request.environ.get(wsgi_environ_key(name))
    return value


@hookimpl
def kc_request_header_names(request: Request) -> Iterable[str]:
    return list(request.headers.keys())


@hookimpl
def kc_request_cookies(request: Request) -> Mapping[str, str]:
    return request.cookies


@hookimpl
def kc_request_form(request: Request) -> Mapping[str, str]:
    return request.form


@hookimpl
def kc_request_client_address(request: Request) -> str | None:
    return request.remote_addr


@hookimpl
def kc_request_is_secure(request: Request) -> bool:
    return request.is_secure


@hookimpl
def kc_session(request: Request) -> MutableMapping[str, Any]:
    if isinstance(request, SessionBoundRequest):
        return request.kc_session
    session: SessionMixin = flask_session._get_current_object()  # type: ignore[attr-defined]
    return session


@hookimpl
def kc_session_rotate(request: Request) -> None:
    if isinstance(request, SessionBoundRequest):
        interface, session = request.kc_session_interface, request.kc_session
    else:
        interface = current_app.session_interface
        session = flask_session._get_current_object()  # type: ignore[attr-defined]
    # Server-side session interfaces (Flask-Session) offer regenerate(); a signed cookie
    # needs nothing: its content, and so the cookie, changes at login.
    regenerate = getattr(interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)


def _build_response(
    status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]]
) -> Response:
    return Response(body, status=status, content_type=content_type, headers=list(headers))


kc_redirect, kc_response = response_hooks(_build_response)
