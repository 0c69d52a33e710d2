"""A policy rule on request data, driven through the engine by every adapter, real Keycloak.

The enforcer's claim information point pushes a request header, a cookie and the client
address (and whether the request came over https) to Keycloak; Keycloak's regex policies
(on the pushed claims, ``targetContextAttributes``) grant the resource only when all three
hold. Each app is served over HTTP on 127.0.0.1 by its framework's own adapter, with a
bearer-protected route; the test asserts Keycloak's decision (200 or 403) and the claims
Keycloak saw, as it returns them with the granted permission.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import requests

from kc_core import AuthzClient, Client
from kc_core.enforcer import Decision, PolicyEnforcer
from kc_core.engine import Enforcer, Engine, Requirement
from kc_core.plugins import Plugins
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.conformance import serve_wsgi
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

RESOURCE = "Request Data Resource"
PATH = "/reqdata/x"
CLAIMS = {
    "agent": "{request.header['X-Agent']}",
    "pass": "{request.cookie['pass']}",
    "address": "{request.remoteAddr}",
    "secure": "{request.secure}",
}
# Keycloak grants the resource only when every pushed claim below matches its pattern.
RULES = {"agent": r"^kc-test-\w+$", "pass": r"^open-sesame$", "address": r"^127\.0\.0\.1$"}
ADAPTERS = ["flask", "starlette", "django", "pyramid", "bottle"]


class RecordingEnforcer(PolicyEnforcer):
    """The real enforcer, keeping each decision it returns (what Keycloak granted)."""

    def __init__(self, authz: AuthzClient, config: Mapping[str, Any]) -> None:
        super().__init__(authz, config)
        self.decisions: list[Decision] = []

    def enforce(self, *args: Any, **kwargs: Any) -> Decision:
        decision = super().enforce(*args, **kwargs)
        self.decisions.append(decision)
        return decision


@pytest.fixture(scope="module")
def request_data_rule(keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin) -> Iterator[None]:
    """The resource, one regex policy per pushed claim, and a permission needing all three
    (added to kc-authz for this module, removed after)."""
    client = keycloak_admin.client(keycloak.realm, "kc-authz")
    server = f"{keycloak_admin.realm_path(keycloak.realm)}/clients/{client['id']}"
    server += "/authz/resource-server"
    created: list[str] = []
    resource = keycloak_admin.post(
        f"{server}/resource", json={"name": RESOURCE, "uris": ["/reqdata/*"]}
    ).json()
    policies = []
    for claim, pattern in RULES.items():
        policy = keycloak_admin.post(
            f"{server}/policy/regex",
            json={
                "name": f"Request {claim} matches",
                "targetClaim": claim,
                "pattern": pattern,
                "targetContextAttributes": True,
                "logic": "POSITIVE",
            },
        ).json()
        policies.append(policy["id"])
        created.append(f"{server}/policy/{policy['id']}")
    permission = keycloak_admin.post(
        f"{server}/permission/resource",
        json={
            "name": "Request Data Area",
            "resources": [resource["_id"]],
            "policies": policies,
            "decisionStrategy": "UNANIMOUS",
        },
    ).json()
    try:
        yield
    finally:
        keycloak_admin.delete(f"{server}/permission/{permission['id']}")
        for url in created:
            keycloak_admin.delete(url)
        keycloak_admin.delete(f"{server}/resource/{resource['_id']}")


@pytest.fixture
def enforcer(authz: AuthzClient, request_data_rule: None) -> RecordingEnforcer:
    path = {"path": "/reqdata/*", "name": RESOURCE, "claim-information-point": {"claims": CLAIMS}}
    return RecordingEnforcer(authz, {"paths": [path]})


@pytest.fixture
def token(authz_client: Client, keycloak: KeycloakRealm) -> str:
    return authz_client.password_grant("bob", keycloak.user("bob").password).access_token


# -- one app per adapter, each protecting PATH with a bearer token ---------------------------


def flask_app(engine: Engine) -> Any:
    from flask import Flask
    from kc_flask import Keycloak, bearer_required

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "request-data-secret"
    Keycloak(app, engine=engine)
    app.add_url_rule(PATH, "data", bearer_required(lambda: "data"))
    return app


def starlette_app(engine: Engine) -> Any:
    from kc_starlette import KeycloakMiddleware, bearer_required
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def data(request: Request) -> PlainTextResponse:
        return PlainTextResponse("data")

    return Starlette(
        routes=[Route(PATH, bearer_required(data))],
        middleware=[
            Middleware(SessionMiddleware, secret_key="request-data-secret"),
            Middleware(KeycloakMiddleware, engine=engine),
        ],
    )


@contextlib.contextmanager
def django_app(engine: Engine) -> Iterator[Any]:
    import django
    from django.conf import settings

    if not settings.configured:  # alone; with kc-django's tests, their conftest did it
        settings.configure(
            SECRET_KEY="request-data-secret-0123456789-abcdefghij",
            ALLOWED_HOSTS=["127.0.0.1"],
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "kc_django"],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            USE_TZ=True,
            LOGGING_CONFIG=None,
        )
        django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpRequest, HttpResponse
    from django.test.utils import override_settings
    from django.urls import path
    from kc_django import bearer_required

    def data(request: HttpRequest) -> HttpResponse:
        return HttpResponse("data")

    urls = types.ModuleType("request_data_urls")  # a URLconf of this test's own
    urls.urlpatterns = [path(PATH.lstrip("/"), bearer_required(data))]  # type: ignore[attr-defined]
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "kc_django.middleware.KeycloakMiddleware",
    ]
    with override_settings(
        KEYCLOAK_ENGINE=engine,
        MIDDLEWARE=middleware,
        ROOT_URLCONF=urls,
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    ):
        yield WSGIHandler()


def pyramid_app(engine: Engine) -> Any:
    from kc_pyramid import bearer_required
    from pyramid.config import Configurator
    from pyramid.response import Response
    from pyramid.session import SignedCookieSessionFactory

    with Configurator(settings={"keycloak.engine": engine}) as config:
        config.set_session_factory(SignedCookieSessionFactory("request-data-secret"))
        config.include("kc_pyramid")
        config.add_route("data", PATH)
        config.add_view(bearer_required(lambda request: Response("data")), route_name="data")
        return config.make_wsgi_app()


def bottle_app(engine: Engine) -> Any:
    bottle = pytest.importorskip("bottle")
    extension = pytest.importorskip("kc_bottle.extension")
    app = bottle.Bottle()
    app.install(extension.KeycloakPlugin(engine))
    app.route(PATH, "GET", lambda: "data", kc=Requirement.for_bearer())
    return app


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def served(adapter: str, engine: Engine) -> Iterator[str]:
    if adapter == "starlette":
        with serve_asgi(starlette_app(engine)) as url:
            yield url
    elif adapter == "django":
        with django_app(engine) as app, serve_wsgi(app) as url:
            yield url
    else:
        builders: dict[str, Callable[[Engine], Any]] = {
            "flask": flask_app,
            "pyramid": pyramid_app,
            "bottle": bottle_app,
        }
        with serve_wsgi(builders[adapter](engine)) as url:
            yield url


# -- the test -----------------------------------------------------------------------------------


def test_the_enforcer_type_is_what_the_engine_takes(authz: AuthzClient) -> None:
    enforcer: Enforcer = PolicyEnforcer(authz, {"paths": []})  # mypy checks the protocol
    assert callable(enforcer.enforce)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_rule_on_a_header_a_cookie_and_the_client_address_decides_through_the_engine(
    adapter: str, authz_client: Client, enforcer: RecordingEnforcer, token: str
) -> None:
    engine = Engine(authz_client, plugins=Plugins(), enforcer=enforcer)
    agent = f"kc-test-{adapter}"
    with served(adapter, engine) as url:

        def get(agent: str, cookie: str | None) -> requests.Response:
            headers = {"Authorization": f"Bearer {token}", "X-Agent": agent}
            if cookie is not None:
                headers["Cookie"] = f"pass={cookie}"
            return requests.get(url + PATH, headers=headers, timeout=30)

        allowed = get(agent, "open-sesame")
        assert (allowed.status_code, allowed.text) == (200, "data")
        granted = enforcer.decisions[-1]
        assert granted.allowed
        # What Keycloak saw: it returns the pushed claims with the permission it granted.
        assert [(p.resource_name, dict(p.claims)) for p in granted.permissions] == [
            (
                RESOURCE,
                {
                    "agent": [agent],
                    "pass": ["open-sesame"],
                    "address": ["127.0.0.1"],
                    "secure": ["false"],
                },
            )
        ]

        wrong_agent = get("someone-else", "open-sesame")
        assert wrong_agent.status_code == 403
        assert wrong_agent.json()["error"] == "access_denied"
        assert not enforcer.decisions[-1].allowed

        no_cookie = get(agent, None)
        assert no_cookie.status_code == 403
        assert not enforcer.decisions[-1].allowed
