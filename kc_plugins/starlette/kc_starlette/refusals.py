"""A FastAPI dependency's refusal answered inside the app's middleware stack.

A dependency cannot return a response, so it raises :class:`~kc_starlette.AccessRefused`.
Raised out of the app, only kc's middleware could send it, and every middleware between
the two (``CORSMiddleware`` added before kc's, say) would never see the answer: a browser on
another origin would get kc's 401/403 without CORS headers, as a network error. Handled by
the route's own exception handling (Starlette's ``ExceptionMiddleware``, the innermost
layer), the answer goes out through every middleware like any response.
"""

from __future__ import annotations

from typing import NoReturn

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .middleware import AccessRefused

# Set by Starlette's ExceptionMiddleware on every request: (handlers by type, by status).
_HANDLERS_KEY = "starlette.exception_handlers"


def refuse(connection: HTTPConnection, response: Response) -> NoReturn:
    """Raise ``response`` as :class:`AccessRefused`, answered by the app's exception handling
    (kc's middleware still sends it when the app has none)."""
    handlers = connection.scope.get(_HANDLERS_KEY)
    if isinstance(handlers, tuple) and handlers and isinstance(handlers[0], dict):
        handlers[0].setdefault(AccessRefused, _answer)
    raise AccessRefused(response)


def _answer(request: Request, refused: Exception) -> Response:
    assert isinstance(refused, AccessRefused)
    response: Response = refused.response
    return response
