"""WebSocket authentication for Starlette and FastAPI, checked before ``accept``.

Browsers cannot set ``Authorization`` on a WebSocket, so the access token may come, in this
order, from the ``access_token`` query parameter, from the subprotocols (offer
``["bearer", token]`` and accept with ``subprotocol="bearer"``), from an ``Authorization:
Bearer`` header (other clients), or from the login session's cookie. A token given is the
credential: a bad one is refused, never passed over for the session. A session cookie is
accepted only from this site's pages (``Origin`` of this app), as a browser sends cookies
with a WebSocket opened by any page.

A refused connection raises Starlette's ``WebSocketException`` with code 1008 (policy
violation; 1013, try again later, when Keycloak is unreachable), which Starlette and
FastAPI turn into a close before the handshake completes (an HTTP 403 to the client).
Example::

    @websocket_required(roles=["realm:user"])
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=accepted_subprotocol(websocket))
        await websocket.send_text(f"hello {websocket.user.display_name}")

    # FastAPI
    @app.websocket("/feed")
    async def feed(websocket: WebSocket, user=Depends(require_websocket())): ...

The query parameter ends up in access logs: prefer the subprotocol in browsers.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from starlette.authentication import BaseUser
from starlette.exceptions import WebSocketException
from starlette.status import WS_1008_POLICY_VIOLATION, WS_1013_TRY_AGAIN_LATER
from starlette.websockets import WebSocket

from kc_core.engine import Requirement

from .authentication import GUARD_KEY
from .protection import admit, engine_of

__all__ = [
    "BEARER_SUBPROTOCOL",
    "TOKEN_QUERY_PARAMETER",
    "accepted_subprotocol",
    "authenticate_websocket",
    "require_websocket",
    "websocket_required",
]

#: Offer ``[BEARER_SUBPROTOCOL, token]``; the server accepts with this subprotocol.
BEARER_SUBPROTOCOL = "bearer"
#: The query parameter carrying the access token (RFC 6750, section 2.3).
TOKEN_QUERY_PARAMETER = "access_token"
_WEB_SCHEMES = {"ws": "http", "wss": "https"}
_ANY_USER = Requirement()

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])


def _offered_token(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get(TOKEN_QUERY_PARAMETER)
    if token:
        return token
    offered: list[str] = list(websocket.scope.get("subprotocols") or ())
    if BEARER_SUBPROTOCOL in offered:
        after = offered.index(BEARER_SUBPROTOCOL) + 1
        return offered[after] if after < len(offered) else ""
    return None


def accepted_subprotocol(websocket: WebSocket) -> str | None:
    """The subprotocol to accept with: ``"bearer"`` when the token came that way, else
    ``None`` (browsers fail a connection whose server picks none of the offered ones)."""
    offered = websocket.scope.get("subprotocols") or ()
    return BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None


def _same_site(websocket: WebSocket) -> bool:
    """Whether a cookie-authenticated handshake comes from this app's own pages."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: it sends its cookies on purpose
    public_url = engine_of(websocket).settings.public_url
    if public_url:
        site = public_url.rstrip("/")
    else:
        url = urlsplit(str(websocket.url))
        site = f"{_WEB_SCHEMES.get(url.scheme, url.scheme)}://{url.netloc}"
    return origin.strip().lower() == site.lower()


def _refuse(status: int, reason: str) -> WebSocketException:
    code = WS_1013_TRY_AGAIN_LATER if status == 503 else WS_1008_POLICY_VIOLATION
    return WebSocketException(code=code, reason=reason)


async def authenticate_websocket(
    websocket: WebSocket, requirement: Requirement = _ANY_USER
) -> BaseUser:
    """Check ``websocket`` against ``requirement`` before it is accepted; return the user.

    The user is also on ``websocket.user`` and the credentials on ``websocket.auth``.

    Raises:
        WebSocketException: refused (code 1008), or Keycloak unreachable (code 1013).
    """
    requirement = dataclasses.replace(requirement, api=True)
    scope = websocket.scope
    token = _offered_token(websocket)
    if token is not None:
        if not token:
            raise _refuse(401, "an empty access token")
        # The engine reads bearer tokens from the Authorization header: judge a copy of the
        # scope that carries one, so the session cannot stand in for a bad token.
        headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1", "replace")))
        judged = {k: v for k, v in scope.items() if k != GUARD_KEY}
        judged["headers"] = headers
        judged.pop("kc.decoded_headers", None)
        connection = WebSocket(judged, websocket.receive, websocket.send)
        requirement = dataclasses.replace(requirement, bearer_only=True)
    elif not _has_bearer_header(websocket) and not _same_site(websocket):
        raise _refuse(403, "a session cookie sent from another site's page")
    else:
        connection = websocket
    refused = await admit(connection, requirement)
    if refused is not None:
        raise _refuse(refused.status_code, "authentication refused")
    if connection is not websocket:
        scope["auth"], scope["user"] = connection.scope["auth"], connection.scope["user"]
    user: BaseUser = scope["user"]
    return user


def _has_bearer_header(websocket: WebSocket) -> bool:
    return websocket.headers.get("authorization", "")[:7].lower() == "bearer "


def websocket_required(
    *, roles: Iterable[str] = (), any_role: bool = False, scopes: Iterable[str] = ()
) -> Callable[[Endpoint], Endpoint]:
    """Protect a Starlette WebSocket endpoint: a user (with every role, or one with
    ``any_role``, and the scopes), checked before the endpoint runs (and accepts)."""
    requirement = Requirement(tuple(roles), any_role, tuple(scopes))

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def protected(websocket: WebSocket, *args: Any, **kwargs: Any) -> Any:
            await authenticate_websocket(websocket, requirement)
            return await endpoint(websocket, *args, **kwargs)

        return cast("Endpoint", protected)

    return decorate


def require_websocket(
    *, roles: Iterable[str] = (), any_role: bool = False, scopes: Iterable[str] = ()
) -> Callable[[WebSocket], Awaitable[BaseUser]]:
    """FastAPI dependency for a WebSocket route: as :func:`websocket_required`; returns the
    user."""
    requirement = Requirement(tuple(roles), any_role, tuple(scopes))

    async def dependency(websocket: WebSocket) -> BaseUser:
        return await authenticate_websocket(websocket, requirement)

    return dependency
