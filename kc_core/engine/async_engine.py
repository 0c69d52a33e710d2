"""The async twin of :class:`~.core.Engine`: the same steps, never blocking the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..stores.memory import MemoryTokenStore
from . import protection
from .bearer import JwtVerifier
from .core import Engine
from .values import Guard, Requirement

_ANY = Requirement()
_T = TypeVar("_T")


class AsyncEngine:
    """The same :class:`Engine` for ASGI adapters, never blocking the event loop.

    What needs no I/O is answered on the loop: an exempt path, a bearer token validated
    before or one whose signing key is already loaded (validated right there), the 401 for a
    missing or malformed token, a browser session in the memory or cookie store that needs
    no refresh. Only what may wait on the network (a key or discovery fetch, a refresh, a
    Redis store, a policy enforcer, the login and logout endpoints) runs in the engine's own
    pool of :attr:`EngineSettings.io_threads` threads, not the loop's default pool, which
    one slow Keycloak could fill. The adapter reads a POST body before handing it over.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Calls handed to the I/O threads so far (a request answered on the loop adds none).
        self.io_calls = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._jwt = isinstance(engine.bearer.verifier, JwtVerifier)
        # Cookie mode keeps its logout marks in the tenant's store too.
        self._local_stores = all(
            isinstance(tenant.store, MemoryTokenStore) for tenant in engine._tenants.values()
        )

    async def _off_loop(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in one of the engine's I/O threads, in the caller's context."""
        self.io_calls += 1
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = ThreadPoolExecutor(
                        self.engine.settings.io_threads, thread_name_prefix="kc-io"
                    )
        run = functools.partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(pool, run)

    def close(self) -> None:
        """Stop the I/O threads once their work is done (a new call starts them again)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def needs_io(self, request: Any, requirement: Requirement = _ANY) -> bool:
        """Whether protecting or authenticating ``request`` may wait on the network.

        ``False`` for a malformed bearer token, a JWT whose key is loaded (without a policy
        enforcer), no session, or a session in the memory or cookie store whose access
        token is neither due for refresh nor signed by an unknown key; for ``requirement``
        bearer only, no token at all.
        """
        engine = self.engine
        tenant = engine._single
        validator = None if tenant is None else tenant.ready_validator
        if validator is None:
            return True  # several tenants, or discovery and keys still to fetch
        adapter = engine.plugins.adapter_for(request)
        authorization = adapter.header(request, "authorization")
        if authorization is not None:
            token = engine.bearer.token_of(authorization)
            if token is None:
                return False  # a 401 at once
            if not self._jwt or engine.enforcer is not None:
                return True
            return not validator.validates_offline(token)
        if requirement.bearer_only or engine.bearer_only:
            return False  # a 401 at once: no session is looked at
        if not self._local_stores:
            return True
        found = engine.sessions.load(engine.call(request, adapter))
        if found is None:
            return False  # a login redirect or a 401
        tokens = found.record.tokens
        if engine.enforcer is not None or tokens.expires_within(engine.settings.refresh_margin):
            return True
        return not validator.validates_offline(tokens.access_token)

    async def protect(self, request: Any, requirement: Requirement = _ANY) -> Guard:
        """See :meth:`Engine.protect`."""
        engine = self.engine
        guard = engine._protect_locally(request, requirement)
        if guard is not None:
            return guard
        if not self.needs_io(request, requirement):
            return engine.protect(request, requirement)
        return await self._off_loop(engine.protect, request, requirement)

    async def authorize(self, request: Any, guard: Guard, requirement: Requirement = _ANY) -> Guard:
        """See :meth:`Engine.authorize`; on the loop unless a policy enforcer may call out."""
        if guard.claims is None or guard.response is not None:
            return await self.protect(request, requirement)
        if self.engine.authorizer.enforcer is None:
            return self.engine.authorize(request, guard, requirement)
        return await self._off_loop(self.engine.authorize, request, guard, requirement)

    async def authenticate(self, request: Any) -> Guard:
        """See :meth:`Engine.authenticate`."""
        engine = self.engine
        guard = engine._authenticate_locally(request)
        if guard is not None:
            return guard
        if not self.needs_io(request):
            return protection.authenticate(engine, engine.call(request))  # checked locally above
        return await self._off_loop(engine.authenticate, request)

    async def route(self, request: Any) -> Any | None:
        """See :meth:`Engine.route`."""
        return await self._off_loop(self.engine.route, request)

    async def login(self, request: Any) -> Any:
        """See :meth:`Engine.login`."""
        return await self._off_loop(self.engine.login, request)

    async def callback(self, request: Any) -> Any:
        """See :meth:`Engine.callback`."""
        return await self._off_loop(self.engine.callback, request)

    async def logout(self, request: Any) -> Any:
        """See :meth:`Engine.logout`."""
        return await self._off_loop(self.engine.logout, request)

    async def backchannel_logout(self, request: Any) -> Any:
        """See :meth:`Engine.backchannel_logout`."""
        return await self._off_loop(self.engine.backchannel_logout, request)
