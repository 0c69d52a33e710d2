"""Refusals as Werkzeug ``HTTPException``s where the app handles them, so Flask's own error
handlers apply.

A protected view that is refused, in an app (or blueprint) with an error handler for the
status or an exception class above it (``@app.errorhandler(403)``), raises the exception for
the engine's status (401 ``Unauthorized``, 403 ``Forbidden``, 503 ``ServiceUnavailable`` ...)
carrying kc's answer as its ``response``, and the handler answers it. Without one the view
returns kc's answer itself (its ``WWW-Authenticate`` and ``Retry-After`` included): what
Flask would send for the exception, without converting it through a WSGI call.
Redirects (the login redirect) are returned as they are.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import default_exceptions

__all__ = ["refusal"]


def refusal(response: Any) -> Any:
    """``response``, unless the app handles its error status: then raise it.

    Raises:
        HTTPException: the status's subclass (``Forbidden`` ...), ``.response`` being kc's,
            when an error handler of the app or of the request's blueprints takes it.
    """
    exception = default_exceptions.get(getattr(response, "status_code", 0))
    if exception is None or not _handled(exception):
        return response
    raise exception(response=response)


def _handled(exception: type[Exception]) -> bool:
    """Whether Flask would find an error handler for ``exception`` in this request."""
    handlers_by_blueprint = current_app.error_handler_spec
    code = getattr(exception, "code", None)
    for blueprint in (*request.blueprints, None):
        by_code = handlers_by_blueprint.get(blueprint)
        if not by_code:
            continue
        for key in (code, None):
            by_class = by_code.get(key)
            if by_class and any(cls in by_class for cls in exception.__mro__):
                return True
    return False
