"""kc's adapter hooks for Flask and Werkzeug requests (entry point ``kc_core`` → ``flask``).

Every Flask request is a Werkzeug request, so one adapter serves both the extension (inside a
Flask request context, where the session is :data:`flask.session`) and the WSGI middleware
(outside it, where the request carries the session it opened: :class:`SessionBoundRequest`).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from flask import current_app
from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request as FlaskRequest
from flask.wrappers import Response
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request

from kc_core.adapters import (
    ResponseTemplates,
    copied,
    request_attribute,
    response_hooks,
    wsgi_header_hook,
)
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


kc_request_method = request_attribute("method")
kc_request_url = request_attribute("url")
kc_request_path = request_attribute("path")
# A MultiDict: indexing gives the first value, as the hook promises.
kc_request_query = request_attribute("args")
kc_request_header = wsgi_header_hook()
kc_request_cookies = request_attribute("cookies")
kc_request_form = request_attribute("form")
kc_request_client_address = request_attribute("remote_addr")
kc_request_is_secure = request_attribute("is_secure")


@hookimpl
def kc_request_header_names(request: Request) -> Iterable[str]:
    return list(request.headers.keys())


@hookimpl
def kc_session(request: Request) -> MutableMapping[str, Any]:
    if isinstance(request, SessionBoundRequest):
        return request.kc_session
    session: SessionMixin = flask_session._get_current_object()  # type: ignore[attr-defined]
    return session


@hookimpl
def kc_session_rotate(request: Request) -> None:
    if isinstance(request, SessionBoundRequest):
        interface = request.kc_session_interface
    else:
        interface = current_app.session_interface
    # Server-side session interfaces (Flask-Session) offer regenerate(); a signed cookie
    # needs nothing: its content, and so the cookie, changes at login.
    regenerate = getattr(interface, "regenerate", None)
    if callable(regenerate):
        regenerate(kc_session(request))


def _build(
    status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]]
) -> Response:
    return Response(body, status=status, content_type=content_type, headers=list(headers))


# A Response's instance fields (Werkzeug 3.1), the mutable ones replaced in each copy; a
# response with any other field (another Werkzeug) is built afresh every time.
_FIELDS = frozenset(
    {"headers", "_status", "_status_code", "direct_passthrough", "_on_close", "response"}
)


def _snapshot(response: Response) -> dict[str, Any] | None:
    """The fields to copy ``response`` from, or ``None`` if it has any this module does not
    know to copy."""
    fields = dict(vars(response))
    headers = response.headers
    if (
        type(response) is not Response
        or fields.keys() != _FIELDS
        or type(headers) is not Headers
        or vars(headers).keys() != {"_list"}
        or not isinstance(response.response, list)
        or response._on_close
    ):
        return None
    # Snapshots: the response itself goes on to the app, which may change it.
    fields["headers"] = headers._list.copy()
    fields["response"] = tuple(response.response)
    return fields


def _copy(fields: dict[str, Any]) -> Response:
    headers = copied(Headers, {"_list": fields["headers"].copy()})
    return copied(
        Response, fields, headers=headers, response=list(fields["response"]), _on_close=[]
    )


#: A Flask response with kc's status, body and headers; a repeated refusal (the no-token
#: 401) built once, then copied (:class:`~kc_core.adapters.ResponseTemplates`).
build_response = ResponseTemplates(_build, _snapshot, _copy)
kc_redirect, kc_response = response_hooks(build_response)
