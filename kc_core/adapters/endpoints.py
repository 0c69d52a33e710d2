"""The engine's endpoints as an adapter mounts them under its prefix (``/kc``).

:data:`ENDPOINTS` lists them (:class:`Endpoint`); :func:`endpoint_view` makes a named view
per endpoint; :func:`read_form_body` reads the urlencoded body of their POSTs for async
adapters (at most :data:`MAX_FORM_BYTES`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .hooks import urlencoded_values

if TYPE_CHECKING:
    from ..engine import Engine


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of the engine's endpoints, as an adapter mounts it under the prefix (``/kc``)."""

    #: The route name (``login``) and the :class:`~kc_core.engine.Engine` method serving it.
    name: str
    #: The path below the prefix (``backchannel-logout``).
    path: str
    #: Whether browsers only ever GET it (login and callback).
    get_only: bool
    #: Whether Keycloak posts to it server to server: no CSRF token can come with it (the
    #: engine validates the logout token instead).
    server_to_server: bool = False

    def serve(self, engine: Engine, request: Any) -> Any:
        """The engine's answer to ``request`` at this endpoint."""
        return getattr(engine, self.name)(request)


ENDPOINTS = (
    Endpoint("login", "login", get_only=True),
    Endpoint("callback", "callback", get_only=True),
    Endpoint("logout", "logout", get_only=False),
    Endpoint("backchannel_logout", "backchannel-logout", get_only=False, server_to_server=True),
)
"""The engine's endpoints: ``login``, ``callback``, ``logout``, ``backchannel_logout``."""


def endpoint_view(
    endpoint: Endpoint, engine_for: Callable[[Any], Engine], name: str
) -> Callable[[Any], Any]:
    """A view function ``name(request)`` answering with ``engine_for(request)``'s ``endpoint``.

    For frameworks whose views take the request (Pyramid's; Django's with ``engine_for``
    ignoring it). Example::

        login_view = endpoint_view(ENDPOINTS[0], engine_of, "login_view")
    """

    def view(request: Any) -> Any:
        return endpoint.serve(engine_for(request), request)

    view.__name__ = view.__qualname__ = name
    view.__doc__ = f"``{{prefix}}/{endpoint.path}``: the engine's {endpoint.name} endpoint."
    return view


# -- POST bodies ------------------------------------------------------------------------------

#: The largest form body read for the engine's POST endpoints (a logout token is about 2 KB).
MAX_FORM_BYTES = 64 * 1024
_FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form_body(content_type: str, chunks: AsyncIterable[bytes]) -> dict[str, str]:
    """A urlencoded body's fields (first value of each); empty for anything else or too big.

    For an async adapter, which reads the body of the engine's POST endpoints itself.
    """
    if not content_type.lower().startswith(_FORM_TYPE):
        return {}
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return urlencoded_values(bytes(body))
