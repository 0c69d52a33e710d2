"""One small app per adapter around a given engine, and how to send it a hostile request
through its framework's own test client (or its WSGI call).

Every app has the same pages: ``/`` (public), ``/private`` (any logged-in user),
``/api/data`` (a bearer token only), and the engine's endpoints under ``/kc``.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

from hostile_input import HostileRequest

from kc_core.engine import Engine

#: Sends one request; answers ``(status, headers)``. An exception escaping is a failure.
Sender = Callable[[HostileRequest], tuple[int, list[tuple[str, str]]]]

ADAPTERS = ("flask", "starlette", "fastapi", "django", "pyramid", "bottle")


def wsgi_environ(request: HostileRequest) -> dict[str, Any]:
    """The WSGI environ a server builds for ``request`` (header values as Latin-1 text)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method, "SCRIPT_NAME": "", "PATH_INFO": request.path,
        "QUERY_STRING": request.query, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(request.body)),
    }  # fmt: skip
    if request.content_type is not None:
        environ["CONTENT_TYPE"] = request.content_type
    for name, value in request.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def wsgi_sender(app: Any) -> Sender:
    """Call ``app`` as a WSGI server would, reading and closing the body."""

    def send(request: HostileRequest) -> tuple[int, list[tuple[str, str]]]:
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            answer[:] = [int(status.split()[0]), list(headers)]

        body = app(wsgi_environ(request), start_response)
        try:
            for _chunk in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return answer[0], answer[1]

    return send


# -- the apps -------------------------------------------------------------------------------

#: What to undo once a test is done with its apps (Django's settings overrides).
CLEANUPS: list[Callable[[], None]] = []


def close_apps() -> None:
    """Undo what building the apps changed in the process."""
    while CLEANUPS:
        CLEANUPS.pop()()


def flask_sender(engine: Engine) -> Sender:
    """A Flask app; requests go through Flask's test client."""
    from flask import Flask
    from kc_flask import Keycloak, bearer_required, current_user, login_required

    app = Flask("kc_fuzz")
    app.config["SECRET_KEY"] = "fuzz-secret-key"
    Keycloak(app, engine=engine)
    app.add_url_rule("/", "home", lambda: "home")
    app.add_url_rule("/private", "private", login_required(lambda: f"{current_user.username}"))
    app.add_url_rule("/api/data", "api", bearer_required(lambda: {"data": 1}))
    client = app.test_client()

    def send(request: HostileRequest) -> tuple[int, list[tuple[str, str]]]:
        environ = wsgi_environ(request)
        response = client.open(
            request.path,
            method=request.method,
            query_string=request.query,
            data=request.body,
            content_type=request.content_type,
            environ_overrides={k: v for k, v in environ.items() if k.startswith("HTTP_")},
        )
        return response.status_code, list(response.headers.items())

    return send


def _starlette_routes() -> list[Any]:
    from kc_starlette import bearer_required, login_required
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Any) -> Any:
        return PlainTextResponse("home")

    @login_required
    async def private(request: Any) -> Any:
        return PlainTextResponse(request.user.username)

    @bearer_required
    async def api(request: Any) -> Any:
        return PlainTextResponse("data")

    return [Route("/", home), Route("/private", private), Route("/api/data", api)]


def asgi_sender(app: Any) -> Sender:
    """Requests through Starlette's ``TestClient`` (httpx), header values sent as bytes."""
    from starlette.testclient import TestClient

    client = TestClient(app, base_url="http://127.0.0.1:8000")

    def send(request: HostileRequest) -> tuple[int, list[tuple[str, str]]]:
        headers = [(k, v.encode("latin-1")) for k, v in request.headers.items()]
        if request.content_type is not None:
            headers.append(("Content-Type", request.content_type.encode("utf-8")))
        # httpx refuses controls and non-ASCII in a URL (servers answer 400): send them escaped.
        query = "".join(
            c if " " < c < "\x7f" else "".join(f"%{b:02X}" for b in c.encode("latin-1"))
            for c in request.query
        )
        url = request.path + (f"?{query}" if query else "")
        response = client.request(
            request.method, url, headers=headers, content=request.body, follow_redirects=False
        )
        return response.status_code, [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
        ]

    return send


def starlette_sender(engine: Engine) -> Sender:
    """A Starlette app behind ``KeycloakMiddleware`` and Starlette's session middleware."""
    from kc_starlette import KeycloakMiddleware
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware

    app = Starlette(
        routes=_starlette_routes(),
        middleware=[
            Middleware(SessionMiddleware, secret_key="fuzz-secret-key"),
            Middleware(KeycloakMiddleware, engine=engine),
        ],
    )
    return asgi_sender(app)


def fastapi_sender(engine: Engine) -> Sender:
    """A FastAPI app with kc-starlette's dependencies."""
    from fastapi import Depends, FastAPI
    from kc_starlette import KeycloakMiddleware, require_bearer, require_login
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware

    app = FastAPI(
        middleware=[
            Middleware(SessionMiddleware, secret_key="fuzz-secret-key"),
            Middleware(KeycloakMiddleware, engine=engine),
        ]
    )

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"page": "home"}

    @app.get("/private")
    async def private(user: Any = Depends(require_login())) -> dict[str, str]:
        return {"user": str(user.username)}

    @app.get("/api/data")
    async def api(user: Any = Depends(require_bearer())) -> dict[str, int]:
        return {"data": 1}

    return asgi_sender(app)


# The URLconf of the Django app (this module): set by django_sender.
urlpatterns: list[Any] = []


def django_sender(engine: Engine) -> Sender:
    """A Django project (this module is its URLconf); requests through Django's test Client.

    Django is configured here unless another test folder already did; either way the app's
    own settings are applied with ``override_settings`` for as long as the process lives.
    """
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import include, path
    from kc_django import bearer_required, login_required

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="fuzz-secret-key-0123456789-0123456789",
            ALLOWED_HOSTS=["*"],
            INSTALLED_APPS=["django.contrib.sessions", "kc_django"],
            DATABASES={},
            USE_TZ=True,
            LOGGING_CONFIG=None,
        )
    django.setup()
    urlpatterns[:] = [
        path("", lambda request: HttpResponse("home")),
        path("private", login_required(lambda request: HttpResponse("private"))),
        path("api/data", bearer_required(lambda request: HttpResponse("data"))),
        path("kc/", include("kc_django.urls")),
    ]
    overrides = override_settings(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "kc_django.middleware.KeycloakMiddleware",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        KEYCLOAK_ENGINE=engine,
    )
    overrides.enable()
    CLEANUPS.append(overrides.disable)  # other Django tests in the process see their own
    client = Client(raise_request_exception=True)

    def send(request: HostileRequest) -> tuple[int, list[tuple[str, str]]]:
        environ = wsgi_environ(request)
        extra = {k: v for k, v in environ.items() if k.startswith("HTTP_") and k != "HTTP_HOST"}
        response = client.generic(
            request.method,
            request.path,
            request.body,
            content_type=request.content_type or "application/octet-stream",
            QUERY_STRING=request.query,
            **extra,
        )
        return response.status_code, list(response.items())

    return send


def pyramid_sender(engine: Engine) -> Sender:
    """A Pyramid app with kc-pyramid's decorators, called through its WSGI entry point."""
    from kc_pyramid import bearer_required, login_required
    from pyramid.config import Configurator
    from pyramid.response import Response
    from pyramid.session import SignedCookieSessionFactory

    with Configurator(settings={"keycloak.engine": engine}) as config:
        config.set_session_factory(SignedCookieSessionFactory("fuzz-secret"))
        config.include("kc_pyramid")
        config.add_route("home", "/")
        config.add_view(lambda request: Response("home"), route_name="home")
        config.add_route("private", "/private")
        config.add_view(login_required(lambda request: Response("private")), route_name="private")
        config.add_route("api", "/api/data")
        config.add_view(bearer_required(lambda request: Response("data")), route_name="api")
        app = config.make_wsgi_app()
    return wsgi_sender(app)


def bottle_sender(engine: Engine) -> Sender:
    """The example Bottle adapter's app (``/api/items`` stands for ``/api/data``), via WSGI."""
    import bottle
    from kc_bottle import KeycloakPlugin

    from kc_core.engine import Requirement

    app = bottle.Bottle(catchall=True)
    app.install(KeycloakPlugin(engine))
    app.get("/", callback=lambda: "home")
    app.get("/private", callback=lambda: "private", kc=True)
    app.get("/api/data", callback=lambda: "data", kc=Requirement.for_bearer())
    return wsgi_sender(app)


SENDERS: dict[str, Callable[[Engine], Sender]] = {
    "flask": flask_sender,
    "starlette": starlette_sender,
    "fastapi": fastapi_sender,
    "django": django_sender,
    "pyramid": pyramid_sender,
    "bottle": bottle_sender,
}
