"""Refusals through Starlette's and FastAPI's exception handlers; kc's answers without them."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from kc_starlette import KeycloakMiddleware, RefusedHTTPException, require_roles, roles_required
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette_support import SECRET_KEY, kc_config

from kc_core import Config
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration


@roles_required("realm:admin")
async def admin(request: Request) -> PlainTextResponse:
    return PlainTextResponse("admin")


def middleware(config: Config) -> list[Middleware]:
    return [
        Middleware(SessionMiddleware, secret_key=SECRET_KEY),
        Middleware(KeycloakMiddleware, config=config),
    ]


async def app_forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RefusedHTTPException)
    return JSONResponse(
        {"app": "forbidden", "detail": exc.detail, "kc_status": exc.response.status_code},
        status_code=403,
    )


async def app_unauthorized(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse("log in first", status_code=401, headers=exc.headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_starlette_exception_handler_replaces_kcs_answer(
    keycloak: KeycloakRealm, access_token: Callable[..., str]
) -> None:
    app = Starlette(
        routes=[Route("/admin", admin)],
        middleware=middleware(kc_config(keycloak)),
        exception_handlers={403: app_forbidden, 401: app_unauthorized},
    )
    client = TestClient(app)
    refused = client.get("/admin", headers=bearer(access_token("bob")))
    assert refused.status_code == 403
    assert refused.json() == {
        "app": "forbidden",
        "detail": "the token lacks a required role",
        "kc_status": 403,
    }
    missing = client.get("/admin", headers={"Authorization": "Bearer garbage"})
    assert (missing.status_code, missing.text) == (401, "log in first")
    assert missing.headers["WWW-Authenticate"].startswith('Bearer realm="kc-test", error=')
    assert client.get("/admin", headers=bearer(access_token("alice"))).text == "admin"


def test_a_fastapi_exception_handler_replaces_kcs_answer(
    keycloak: KeycloakRealm, access_token: Callable[..., str]
) -> None:
    app = FastAPI(middleware=middleware(kc_config(keycloak)))
    app.add_exception_handler(403, app_forbidden)

    @app.get("/admin", dependencies=[Depends(require_roles("realm:admin"))])
    async def fastapi_admin() -> dict[str, str]:
        return {"admin": "yes"}

    client = TestClient(app)
    refused = client.get("/admin", headers=bearer(access_token("bob")))
    assert (refused.status_code, refused.json()["app"]) == (403, "forbidden")
    # No handler for 401: kc's own answer, not FastAPI's {"detail": ...}.
    missing = client.get("/admin", headers={"Accept": "application/json"})
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "unauthorized",
        "error_description": "authentication required",
    }
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'


def test_without_handlers_kcs_json_for_api_clients_and_login_redirect_for_browsers(
    keycloak: KeycloakRealm, access_token: Callable[..., str]
) -> None:
    client = TestClient(
        Starlette(routes=[Route("/admin", admin)], middleware=middleware(kc_config(keycloak)))
    )
    refused = client.get("/admin", headers=bearer(access_token("bob")))
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    browser = client.get("/admin", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code in (302, 303, 307)


def test_an_unreachable_keycloak_keeps_retry_after_through_a_handler(
    offline_config: Config, access_token: Callable[..., str]
) -> None:
    seen: list[Any] = []

    async def unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        seen.append(exc.headers)
        return PlainTextResponse("down", status_code=503, headers=exc.headers)

    app = Starlette(
        routes=[Route("/admin", admin)],
        middleware=middleware(offline_config),
        exception_handlers={503: unavailable},
    )
    answer = TestClient(app).get("/admin", headers=bearer(access_token("alice")))
    assert (answer.status_code, answer.text, answer.headers["Retry-After"]) == (503, "down", "5")
