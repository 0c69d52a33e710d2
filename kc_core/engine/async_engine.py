"""The async twin of :class:`~.core.Engine`: the same steps, never blocking the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from .core import Engine
from .values import Guard, Requirement

_ANY = Requirement()


class AsyncEngine:
    """The same :class:`Engine` for ASGI adapters, never blocking the event loop.

    Requests answered without any I/O (an exempt path, a bearer token validated before) are
    checked on the loop; everything that may reach Keycloak or a shared store runs in a
    worker thread. The adapter reads a POST body before handing the request over.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def protect(self, request: Any, requirement: Requirement = _ANY) -> Guard:
        """See :meth:`Engine.protect`."""
        guard = self.engine._protect_locally(request, requirement)
        if guard is not None:
            return guard
        return await asyncio.to_thread(self.engine.protect, request, requirement)

    async def authorize(self, request: Any, guard: Guard, requirement: Requirement = _ANY) -> Guard:
        """See :meth:`Engine.authorize`; on the loop unless a policy enforcer may call out."""
        if guard.claims is not None and guard.response is None and self.engine.enforcer is None:
            return self.engine.authorize(request, guard, requirement)
        return await asyncio.to_thread(self.engine.authorize, request, guard, requirement)

    async def authenticate(self, request: Any) -> Guard:
        """See :meth:`Engine.authenticate`."""
        guard = self.engine._authenticate_locally(request)
        if guard is not None:
            return guard
        return await asyncio.to_thread(self.engine.authenticate, request)

    async def route(self, request: Any) -> Any | None:
        """See :meth:`Engine.route`."""
        return await asyncio.to_thread(self.engine.route, request)

    async def login(self, request: Any) -> Any:
        """See :meth:`Engine.login`."""
        return await asyncio.to_thread(self.engine.login, request)

    async def callback(self, request: Any) -> Any:
        """See :meth:`Engine.callback`."""
        return await asyncio.to_thread(self.engine.callback, request)

    async def logout(self, request: Any) -> Any:
        """See :meth:`Engine.logout`."""
        return await asyncio.to_thread(self.engine.logout, request)

    async def backchannel_logout(self, request: Any) -> Any:
        """See :meth:`Engine.backchannel_logout`."""
        return await asyncio.to_thread(self.engine.backchannel_logout, request)
