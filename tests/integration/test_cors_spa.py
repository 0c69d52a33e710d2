"""A single-page app on another origin calls a kc-protected API (tests/spa_support.py):
keycloak-js logs bob in in headless Chromium, and the page must read kc's 200, 403 and 401.
Each app is set up as docs/cors.md shows (FastAPI, Flask, Pyramid; Django's is in
tests/kc_plugins/django); FastAPI also in the other middleware order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from spa_support import assert_readable, run_spa

from kc_core import Config
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.conformance import chromium as headless_chromium
from kc_core.testing.server import KeycloakRealm
from kc_core.testing.serving import serve_asgi, serve_wsgi

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.integration


def fastapi_api(config: Config, spa_origin: str, cors_outermost: bool) -> Any:
    from fastapi import Depends, FastAPI
    from fastapi.middleware.cors import CORSMiddleware
    from kc_starlette import KeycloakMiddleware, require_bearer
    from starlette.authentication import BaseUser

    app = FastAPI()

    @app.get("/api/user")
    async def user(who: BaseUser = Depends(require_bearer(roles=["realm:user"]))) -> Any:
        return {"username": who.kc_identity.username}  # type: ignore[attr-defined]

    @app.get("/api/admin")
    async def admin(who: BaseUser = Depends(require_bearer(roles=["realm:admin"]))) -> Any:
        return {"username": who.kc_identity.username}  # type: ignore[attr-defined]

    cors = {"allow_origins": [spa_origin], "allow_headers": ["authorization"]}
    if cors_outermost:  # docs/cors.md: add CORSMiddleware last, it wraps everything
        app.add_middleware(KeycloakMiddleware, config=config)
        app.add_middleware(CORSMiddleware, **cors)
    else:
        app.add_middleware(CORSMiddleware, **cors)
        app.add_middleware(KeycloakMiddleware, config=config)
    return app


def flask_api(config: Config, spa_origin: str) -> Any:
    from flask import Flask, Response, g, request
    from kc_flask import Keycloak, bearer_required

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "spa-test"
    Keycloak(app, config=config)

    @app.get("/api/user")
    @bearer_required(roles=["realm:user"])
    def user() -> Any:
        return {"username": g.kc_identity.username}

    @app.get("/api/admin")
    @bearer_required(roles=["realm:admin"])
    def admin() -> Any:
        return {"username": g.kc_identity.username}

    @app.after_request
    def cors(response: Response) -> Response:  # docs/cors.md: every answer, kc's included
        response.headers["Access-Control-Allow-Origin"] = spa_origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":  # the preflight of a request with Authorization
            response.headers["Access-Control-Allow-Headers"] = "Authorization"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
        return response

    return app


def cors_tween_factory(handler: Any, registry: Any) -> Any:
    """docs/cors.md's Pyramid tween, its origin read from the app's settings."""
    origin = registry.settings["cors.origin"]

    def cors_tween(request: Any) -> Any:
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = request.response  # an empty 200
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
        else:
            response = handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return cors_tween


def pyramid_api(config: Config, spa_origin: str) -> Any:
    import pyramid.tweens
    from kc_pyramid import bearer_required
    from pyramid.config import Configurator

    settings = {
        "keycloak.server_url": config.server_url,
        "keycloak.realm": config.realm,
        "keycloak.client_id": config.client_id,
        "keycloak.client_secret": config.client_secret,
        "keycloak.bearer_only": "true",
        "cors.origin": spa_origin,
    }

    @bearer_required(roles=["realm:user"])
    def user(request: Any) -> Any:
        return {"username": request.identity.username}

    @bearer_required(roles=["realm:admin"])
    def admin(request: Any) -> Any:
        return {"username": request.identity.username}

    with Configurator(settings=settings) as pyramid_config:
        pyramid_config.include("kc_pyramid")
        # Over EXCVIEW, so kc's answers from the forbidden view get the headers too.
        pyramid_config.add_tween(f"{__name__}.cors_tween_factory", over=pyramid.tweens.EXCVIEW)
        pyramid_config.add_route("user", "/api/user")
        pyramid_config.add_view(user, route_name="user", renderer="json")
        pyramid_config.add_route("admin", "/api/admin")
        pyramid_config.add_view(admin, route_name="admin", renderer="json")
        return pyramid_config.make_wsgi_app()


APIS: dict[
    str, tuple[Callable[[Config, str], Any], Callable[[Any], AbstractContextManager[str]]]
] = {
    "fastapi, CORS outermost": (lambda c, o: fastapi_api(c, o, True), serve_asgi),
    "fastapi, CORS inside kc": (lambda c, o: fastapi_api(c, o, False), serve_asgi),
    "flask": (flask_api, serve_wsgi),
    "pyramid": (pyramid_api, serve_wsgi),
}


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path) as driver:
        yield driver


@pytest.mark.parametrize("setup", list(APIS))
def test_an_spa_on_another_origin_reads_kcs_answers(
    setup: str, chromium: WebDriver, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    if setup.startswith("fastapi"):
        pytest.importorskip("fastapi")
    make_api, serve = APIS[setup]
    assert_readable(run_spa(chromium, keycloak, keycloak_admin, make_api, serve))
