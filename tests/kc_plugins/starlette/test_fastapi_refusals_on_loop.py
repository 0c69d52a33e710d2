"""kc's refusals from FastAPI dependencies are answered on the event loop.

A refused dependency raises; the route's exception handling answers it. Starlette runs a
handler that is a plain function in a worker thread, so kc's handler must be a coroutine:
here any call into the thread pool (or ``asyncio.to_thread``) fails the request.
No Keycloak is needed: a request without a token is refused before any look-up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import starlette._exception_handler
import starlette.concurrency
from fastapi import Depends, FastAPI
from kc_starlette import KeycloakMiddleware, build_engine, require_bearer
from starlette.authentication import BaseUser
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from kc_core import Config

OFFLINE = Config(server_url="http://127.0.0.1:9", realm="kc-test", client_id="kc-web")


def _no_threads(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a refusal went to a worker thread")


def test_a_dependency_refusal_takes_no_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starlette._exception_handler, "run_in_threadpool", _no_threads)
    monkeypatch.setattr(starlette.concurrency, "run_in_threadpool", _no_threads)
    monkeypatch.setattr(asyncio, "to_thread", _no_threads)
    app = FastAPI(middleware=[Middleware(KeycloakMiddleware, engine=build_engine(config=OFFLINE))])
    reader = Depends(require_bearer(roles=["reader"]))

    @app.get("/api", response_class=PlainTextResponse)
    async def api(user: BaseUser = reader) -> str:
        return user.display_name

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            return await client.get("/api", headers={"Accept": "application/json"})

    answer = asyncio.run(call())
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.headers["Content-Type"].startswith("application/json")
