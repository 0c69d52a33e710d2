"""Refusals as Werkzeug ``HTTPException``s, so Flask's own error handlers apply.

A protected view that is refused raises the exception for the engine's status (401
``Unauthorized``, 403 ``Forbidden``, 503 ``ServiceUnavailable`` ...) carrying kc's answer as
its ``response``: without a handler Flask sends that answer unchanged (its
``WWW-Authenticate`` and ``Retry-After`` included); ``@app.errorhandler(403)`` replaces it.
Redirects (the login redirect) are returned as they are.
"""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import default_exceptions

__all__ = ["refusal"]


def refusal(response: Any) -> Any:
    """``response`` for a redirect; for an error status, raise it as an ``HTTPException``.

    Raises:
        HTTPException: the status's subclass (``Forbidden`` ...), ``.response`` being kc's.
    """
    exception = default_exceptions.get(getattr(response, "status_code", 0))
    if exception is None:
        return response
    raise exception(response=response)
