"""``KeycloakMiddleware(require=...)``: a JSON API protected as a whole, refused before routing.

The app runs under uvicorn against the real Keycloak, with real users' tokens: alice and bob
hold the realm role ``user`` (alice also ``admin``), carol holds neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from kc_starlette import KeycloakMiddleware, bearer_required, build_engine
from starlette_support import kc_config

from kc_core.engine import EngineSettings, Requirement
from kc_core.testing.server import KeycloakRealm

TIMEOUT = 15.0


def api_app(keycloak: KeycloakRealm, reached: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/api", response_class=PlainTextResponse)
    async def api(request: Request) -> str:
        reached.append(request.url.path)
        return str(request.user.username)

    @app.get("/health", response_class=PlainTextResponse)
    async def health(request: Request) -> str:
        reached.append(request.url.path)
        return "up"

    @app.get("/admin", response_class=PlainTextResponse)
    @bearer_required(roles=["realm:admin"])
    async def admin(request: Request) -> str:
        reached.append(request.url.path)
        return str(request.user.username)

    engine = build_engine(
        config=kc_config(keycloak), settings=EngineSettings(exempt_paths=("/health",))
    )
    app.add_middleware(
        KeycloakMiddleware, engine=engine, require=Requirement.for_bearer(roles=["realm:user"])
    )
    return app


def test_every_request_needs_the_requirement_before_any_route_runs(
    keycloak: KeycloakRealm, serve: Callable[[Any], str], access_token: Callable[[str], str]
) -> None:
    reached: list[str] = []
    url = serve(api_app(keycloak, reached))

    def get(path: str, token: str | None = None) -> requests.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return requests.get(f"{url}{path}", headers=headers, timeout=TIMEOUT)

    for path in ("/api", "/no-such-route"):  # refused before routing: a 401, not a 404
        answer = get(path)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["error"] == "unauthorized"
    assert get("/api", "not-a-token").status_code == 401
    assert reached == []
    assert get("/health").text == "up"  # exempt: passes without a token
    alice, bob, carol = (access_token(name) for name in ("alice", "bob", "carol"))
    assert get("/api", alice).text == "alice"
    refused = get("/api", carol)  # a valid token without the role every route needs
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert get("/admin", alice).text == "alice"  # the route's own role, on top
    assert get("/admin", bob).status_code == 403
    assert reached == ["/health", "/api", "/admin"]
