"""What kc-starlette answers on the event loop and what it hands to its own I/O threads.

The app runs under uvicorn (a thread of this process) against the real Keycloak; the route
``/hops`` reads the engine's count of calls handed to its I/O threads, so a request that
needs no I/O (a browser session in the memory store, a missing or malformed token, a token
whose key is loaded) is seen to add none, and one that may (an unknown key) is seen to add one.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

import requests
from kc_starlette import KeycloakMiddleware, bearer_required, build_engine, login_required
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette_support import SECRET_KEY, kc_config

from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.server import KeycloakRealm

TIMEOUT = 15.0


async def hops(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request.scope["kc.backend"].engine.io_calls))


@login_required
async def private(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"private page of {request.user.username}")


@bearer_required
async def api(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.username)


def _with_unknown_kid(token: str) -> str:
    header, payload, signature = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    fields["kid"] = "a-key-keycloak-never-had"
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    return f"{forged}.{payload}.{signature}"


def test_sessions_and_refusals_take_no_thread_hop_an_unknown_key_takes_one(
    keycloak: KeycloakRealm, serve: Callable[[Any], str], access_token: Callable[[str], str]
) -> None:
    app = Starlette(
        routes=[Route("/hops", hops), Route("/private", private), Route("/api", api)],
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY),
            Middleware(KeycloakMiddleware, engine=build_engine(config=kc_config(keycloak))),
        ],
    )
    url = serve(app)
    browser = BrowserSession()
    login_with_form(f"{url}/private", "alice", "alice-password", session=browser)

    def count() -> int:
        return int(browser.get(f"{url}/hops", timeout=TIMEOUT).text)

    def status(path: str, authorization: str | None = None) -> int:
        headers = {} if authorization is None else {"Authorization": authorization}
        return requests.get(f"{url}{path}", headers=headers, timeout=TIMEOUT).status_code

    before = count()
    for _ in range(3):
        page = browser.get(f"{url}/private", timeout=TIMEOUT)
        assert (page.status_code, page.text) == (200, "private page of alice")
    assert status("/api") == 401  # no token
    assert status("/api", "Bearer not-a-token") == 401
    assert status("/api", "Basic YWxpY2U6eA==") == 401
    bob = access_token("bob")
    assert status("/api", f"Bearer {bob}") == 200  # first seen, its key already loaded
    assert count() == before

    assert status("/api", f"Bearer {_with_unknown_kid(bob)}") == 401
    assert count() > before  # the key set may need a refetch: off the loop


def test_io_runs_in_the_engines_own_threads(
    keycloak: KeycloakRealm, serve: Callable[[Any], str]
) -> None:
    engine = build_engine(config=kc_config(keycloak))
    app = Starlette(
        routes=[Route("/hops", hops)],
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY),
            Middleware(KeycloakMiddleware, engine=engine),
        ],
    )
    url = serve(app)
    before = set(threading.enumerate())
    answer = requests.get(f"{url}/kc/login", allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302  # the engine's login (discovery in an I/O thread)
    started = set(threading.enumerate()) - before
    assert started
    assert all(thread.name.startswith("kc-io") for thread in started)
