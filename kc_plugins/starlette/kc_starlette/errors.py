"""Refusals through Starlette's exception handlers, where the app has one for them.

When the app registers a handler for a refusal's status (``exception_handlers={403: ...}``,
FastAPI's ``@app.exception_handler(403)``) or for :class:`RefusedHTTPException`, a refused
request raises :class:`RefusedHTTPException` (a Starlette ``HTTPException``) and the
handler answers it. Otherwise kc's own answer is sent: an ``HTTPException`` would meet
Starlette's default handler (plain text) or FastAPI's (``{"detail": ...}``) and lose kc's
page, JSON body and challenge; :class:`AccessRefused` carries that answer instead.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

__all__ = ["AccessRefused", "RefusedHTTPException", "raise_if_handled", "raise_refusal"]

# Set by Starlette's ExceptionMiddleware on every request: (handlers by type, by status).
_HANDLERS_KEY = "starlette.exception_handlers"

_BODY_HEADERS = frozenset({b"content-type", b"content-length"})


class AccessRefused(Exception):
    """The engine's answer (401, 403, 503, login redirect) replaces the endpoint's.

    Raised by the FastAPI dependencies of :mod:`kc_starlette.protection`;
    :class:`KeycloakMiddleware` sends ``response``.
    """

    def __init__(self, response: Any) -> None:
        super().__init__(getattr(response, "status_code", None))
        self.response = response


class RefusedHTTPException(HTTPException):
    """kc refused the request (401, 403, 503) and the app handles that status itself.

    ``response`` is kc's own answer (send it to keep kc's page); ``headers`` carry its
    ``WWW-Authenticate``, ``Retry-After`` and ``Cache-Control``; ``detail`` is its
    ``error_description`` for JSON answers.
    """

    def __init__(self, response: Response) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in response.raw_headers
            if name not in _BODY_HEADERS
        }
        super().__init__(response.status_code, _description(response), headers)
        self.response = response


def _description(response: Response) -> str | None:
    if response.media_type != "application/json":
        return None
    try:
        body: Any = json.loads(bytes(response.body))
    except ValueError:
        return None
    description = body.get("error_description") if isinstance(body, dict) else None
    return description if isinstance(description, str) else None


def raise_if_handled(connection: HTTPConnection, response: Response) -> None:
    """Raise kc's ``response`` as :class:`RefusedHTTPException` when an app handler takes it.

    Redirects (the login redirect) are never raised.
    """
    if response.status_code < 400:
        return
    handlers = connection.scope.get(_HANDLERS_KEY)
    if not handlers:
        return
    by_class, by_status = handlers
    if response.status_code in by_status or RefusedHTTPException in by_class:
        raise RefusedHTTPException(response)


def raise_refusal(connection: HTTPConnection, response: Response) -> NoReturn:
    """Raise kc's ``response`` for a FastAPI dependency, which cannot return one.

    The app's handler for its status answers it (:func:`raise_if_handled`); otherwise it is
    raised as :class:`~kc_starlette.AccessRefused` and answered by the route's own exception
    handling (Starlette's ``ExceptionMiddleware``, the innermost layer), so it goes out
    through every middleware (``CORSMiddleware`` added before kc's, say) like any response;
    kc's middleware still sends it when the app has no exception handling at all.
    """
    raise_if_handled(connection, response)
    handlers = connection.scope.get(_HANDLERS_KEY)
    if isinstance(handlers, tuple) and handlers and isinstance(handlers[0], dict):
        handlers[0].setdefault(AccessRefused, _answer)
    raise AccessRefused(response)


async def _answer(request: Request, refused: Exception) -> Response:
    # A coroutine: Starlette runs a plain function handler in a worker thread.
    assert isinstance(refused, AccessRefused)
    response: Response = refused.response
    return response
