"""Helpers of kc-starlette's tests: the test app and its settings.

A module of its own (not ``conftest``): every test folder has a ``conftest`` module, and only
one of them can be imported under that name in a run.
"""

from __future__ import annotations

from typing import Any

from kc_starlette import (
    KeycloakMiddleware,
    bearer_required,
    login_required,
    roles_required,
)
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from kc_core import Config
from kc_core.engine import Engine
from kc_core.testing.server import KeycloakRealm

CLIENT_ID = "kc-web"
SECRET_KEY = "test-secret-key-0123456789"


def kc_config(keycloak: KeycloakRealm, **overrides: Any) -> Config:
    """kc-web of the test realm."""
    return Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id=CLIENT_ID,
        client_secret=keycloak.client(CLIENT_ID).secret,
        **overrides,
    )


def keycloak_environ(keycloak: KeycloakRealm) -> dict[str, str]:
    """``KEYCLOAK_*`` variables pointing an app at kc-web of the test realm."""
    return {
        "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm,
        "KEYCLOAK_CLIENT_ID": CLIENT_ID,
        "KEYCLOAK_CLIENT_SECRET": keycloak.client(CLIENT_ID).secret,
    }


# -- the test app ----------------------------------------------------------------------------


async def home(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse({"authenticated": user.is_authenticated, "user": user.display_name or None})


async def public(request: Request) -> PlainTextResponse:
    return PlainTextResponse("public")


@login_required
async def private(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"private page of {request.user.username}")


@roles_required("realm:admin")
def admin(request: Request) -> PlainTextResponse:  # a sync endpoint: runs in the thread pool
    return PlainTextResponse(f"admin page of {request.user.username}")


@bearer_required(roles=["kc-api:reader"])
async def api_data(request: Request) -> JSONResponse:
    return JSONResponse({"data": [1, 2, 3], "reader": request.user.username})


@requires("realm:admin")  # Starlette's own decorator reads kc's credentials
async def starlette_admin(request: Request) -> PlainTextResponse:
    return PlainTextResponse("starlette admin")


def build_app(
    engine: Engine | None = None, *, https_only: bool = False, **middleware: Any
) -> Starlette:
    """The routes the conformance kit expects, and a JSON API, protected the Starlette way.

    ``https_only`` makes the session cookie ``Secure`` (the kit's browser still sends it to
    127.0.0.1 over http).
    """
    if engine is not None:
        middleware["engine"] = engine
    return Starlette(
        routes=[
            Route("/", home),
            Route("/public", public),
            Route("/private", private),
            Route("/admin", admin),
            Route("/api/data", api_data),
            Route("/starlette-admin", starlette_admin),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY, https_only=https_only),
            Middleware(KeycloakMiddleware, **middleware),
        ],
    )
