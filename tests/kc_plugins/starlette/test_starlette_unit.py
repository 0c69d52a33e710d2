"""kc-starlette without a server: hooks, settings, the user object, set-up errors.

Nothing here reaches Keycloak: engines point at a closed port and only paths that need no
Keycloak are exercised (the behaviour with Keycloak is in the integration tests).
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import Any

import httpx
import pytest
import starlette.middleware.sessions
from kc_starlette import (
    AuthenticationMiddleware,
    KeycloakMiddleware,
    KeycloakUser,
    build_engine,
    engine_settings,
    login_required,
)
from kc_starlette import plugin as hooks
from kc_starlette.authentication import KeycloakBackend
from kc_starlette.middleware import MAX_FORM_BYTES, read_form
from starlette.applications import Starlette
from starlette.authentication import SimpleUser
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kc_core import Config, ConfigError
from kc_core.engine import Engine, Identity
from kc_core.plugins import Plugins

OFFLINE = Config(server_url="http://127.0.0.1:9", realm="kc-test", client_id="kc-web")


def connection(
    path: str = "/orders/7",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    **scope: Any,
) -> HTTPConnection:
    return HTTPConnection(
        {
            "type": "http", "method": "GET", "scheme": "http", "path": path,
            "root_path": "", "query_string": b"", "client": ("10.1.2.3", 5000),
            "server": ("app.test", 80),
            "headers": headers if headers is not None else [(b"host", b"app.test")],
            **scope,
        }
    )  # fmt: skip


# -- hooks ----------------------------------------------------------------------------------------


def test_the_entry_point_registers_the_adapter() -> None:
    plugins = Plugins()
    assert "starlette" in plugins.adapter_names()
    assert plugins.adapter_for(connection()).name == "starlette"
    assert plugins.adapter_for(Request(connection().scope)).name == "starlette"


def test_header_lookup_ignores_case_and_follows_a_replaced_header_list() -> None:
    conn = connection(headers=[(b"host", b"app.test"), (b"authorization", b"Bearer abc")])
    assert hooks.kc_request_header(conn, "Authorization") == "Bearer abc"
    assert hooks.kc_request_header(conn, "authorization") == "Bearer abc"
    assert hooks.kc_request_header(conn, "X-Requested-With") is None
    conn.scope["headers"] = [(b"authorization", b"Bearer other")]  # e.g. a proxy middleware
    assert hooks.kc_request_header(conn, "Authorization") == "Bearer other"


def test_request_hooks_read_the_scope() -> None:
    conn = connection(
        "/app/orders",
        query_string=b"next=/a&next=/b&x=1",
        scheme="https",
        headers=[(b"host", b"shop.example"), (b"cookie", b"a=1; b=2")],
    )
    assert hooks.kc_request_url(conn) == "https://shop.example/app/orders?next=/a&next=/b&x=1"
    assert hooks.kc_request_path(conn) == "/app/orders"
    assert hooks.kc_request_query(conn) == {"next": "/a", "x": "1"}  # first value of each
    assert hooks.kc_request_cookies(conn) == {"a": "1", "b": "2"}
    assert hooks.kc_request_is_secure(conn) is True
    assert hooks.kc_request_client_address(conn) == "10.1.2.3"
    assert hooks.kc_request_method(conn) == "GET"
    assert hooks.kc_request_form(conn) == {}
    conn.scope[hooks.FORM_KEY] = {"logout_token": "t"}
    assert hooks.kc_request_form(conn) == {"logout_token": "t"}
    websocket = connection(type="websocket", scheme="wss", client=None)
    del websocket.scope["method"]
    assert hooks.kc_request_method(websocket) == "GET"
    assert hooks.kc_request_client_address(websocket) is None


def test_session_is_starlette_s_and_reading_it_varies_the_response() -> None:
    # Starlette's Session (which marks itself accessed, for "Vary: Cookie") is newer than
    # the oldest Starlette kc supports, whose session is a plain dict.
    session_class = getattr(starlette.middleware.sessions, "Session", None)
    session = (session_class or dict)({"kc": {"key": "k"}})
    conn = connection(session=session)
    assert hooks.kc_session(conn) is session
    if session_class is not None:
        assert session.accessed
    assert hooks.kc_session(connection()) == {}  # no SessionMiddleware: nothing to find


def test_responses_keep_every_header() -> None:
    cookies = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    redirect = hooks.kc_redirect(connection(), "/kc/login?next=%2F", cookies)
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "/kc/login?next=%2F"
    assert redirect.headers.getlist("set-cookie") == ["a=1", "b=2"]
    answer = hooks.kc_response(connection(), 401, b"{}", "application/json", cookies)
    assert (answer.status_code, answer.body, answer.media_type) == (401, b"{}", "application/json")
    assert answer.headers.getlist("set-cookie") == ["a=1", "b=2"]


def test_read_form_takes_urlencoded_bodies_only_and_caps_their_size() -> None:
    def request(body: bytes, content_type: str) -> Request:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        scope = connection(headers=[(b"content-type", content_type.encode())]).scope
        return Request({**scope, "method": "POST"}, receive)

    form = "application/x-www-form-urlencoded"
    assert asyncio.run(read_form(request(b"a=1&a=2&b=", form))) == {"a": "1", "b": ""}
    assert asyncio.run(read_form(request(b'{"a": 1}', "application/json"))) == {}
    assert asyncio.run(read_form(request(b"a=" + b"x" * MAX_FORM_BYTES, form))) == {}
    assert asyncio.run(read_form(request(b"a=%ff", form))) == {"a": "\ufffd"}


# -- settings -----------------------------------------------------------------------------------


def test_engine_settings_come_from_the_environment() -> None:
    settings = engine_settings(
        {"KEYCLOAK_PREFIX": "/auth", "KEYCLOAK_ALLOW_GET_LOGOUT": "yes",
         "KEYCLOAK_REFRESH_MARGIN": "60", "KEYCLOAK_EXEMPT_PATHS": "/health, /static/",
         "KEYCLOAK_SCOPES": "openid email"},
        after_login_url="/home",
    )  # fmt: skip
    assert settings.login_path == "/auth/login"
    assert settings.allow_get_logout is True
    assert settings.refresh_margin == 60.0
    assert settings.exempt_paths == ("/health", "/static/")
    assert settings.after_login_url == "/home"
    assert settings.scopes is None  # KEYCLOAK_SCOPES configures the client


@pytest.mark.parametrize(
    ("variable", "value"),
    [("KEYCLOAK_PREFIX", "auth/"), ("KEYCLOAK_REFRESH_MARGIN", "soon"),
     ("KEYCLOAK_ALLOW_GET_LOGOUT", "perhaps")],
)  # fmt: skip
def test_a_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        engine_settings({variable: value})


def test_the_client_comes_from_the_environment() -> None:
    environ = {"KEYCLOAK_SERVER_URL": "http://sso.test", "KEYCLOAK_REALM": "shop",
               "KEYCLOAK_CLIENT_ID": "web", "KEYCLOAK_PREFIX": "/sso"}  # fmt: skip
    engine = build_engine(environ=environ)
    assert engine.client.config.realm == "shop"
    assert engine.settings.prefix == "/sso"
    with pytest.raises(ConfigError, match="realm"):
        build_engine(environ={"KEYCLOAK_SERVER_URL": "http://sso.test"})


@pytest.mark.parametrize("callback_url", ["http://localhost/kc/cb", "/callback"])
def test_seed_callback_url_must_end_in_callback(callback_url: str) -> None:
    with pytest.raises(ConfigError, match="callback"):
        AuthenticationMiddleware(PlainTextResponse("x"), callback_url, client=OFFLINE)


# -- users ----------------------------------------------------------------------------------------


CLAIMS = MappingProxyType(
    {"sub": "u-1", "preferred_username": "alice", "name": "Alice A", "email": "a@x.test",
     "scope": "openid email", "realm_access": {"roles": ["admin", "user"]},
     "resource_access": {"kc-api": {"roles": ["reader"]}}}
)  # fmt: skip


def test_keycloak_user_is_a_starlette_user() -> None:
    user = KeycloakUser(Identity.from_claims(CLAIMS), "token")
    assert (user.is_authenticated, user.identity, user.display_name) == (True, "u-1", "Alice A")
    assert (user.username, user.email, user.access_token) == ("alice", "a@x.test", "token")
    assert user.realm_roles == {"admin", "user"}
    assert user.client_roles("kc-api") == {"reader"}
    assert user.kc_identity.claims["sub"] == "u-1"
    anonymous_name = KeycloakUser(Identity.from_claims({"sub": "u-2"}), None)
    assert anonymous_name.display_name == "u-2"


def test_credentials_hold_scopes_and_roles_and_users_are_made_once() -> None:
    backend = KeycloakBackend(build_engine(config=OFFLINE))
    identity = Identity.from_claims(CLAIMS)
    credentials, user = backend.credentials_and_user(identity, "token")
    assert credentials.scopes == [
        "authenticated", "openid", "email", "realm:admin", "realm:user", "kc-api:reader",
    ]  # fmt: skip
    assert credentials.token == "token"
    assert backend.credentials_and_user(identity, "token")[1] is user
    own = SimpleUser("own")  # a kc_build_identity hook may return a Starlette user
    assert backend.credentials_and_user(own, "t")[1] is own


# -- set-up errors --------------------------------------------------------------------------------


def _get(app: Any, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            return await client.get(path)

    return asyncio.run(call())


def test_login_without_session_middleware_says_what_to_add() -> None:
    app = Starlette(middleware=[Middleware(KeycloakMiddleware, config=OFFLINE)])
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        _get(app, "/kc/login")


def test_protected_endpoint_without_the_middleware_says_what_to_add() -> None:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    app = Starlette(routes=[Route("/", login_required(page))])
    with pytest.raises(RuntimeError, match="KeycloakMiddleware"):
        _get(app, "/")


def test_visitors_are_anonymous_without_asking_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_threads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a visitor's request went to a worker thread")

    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.user.is_authenticated} {request.auth.scopes}")

    engine: Engine = build_engine(config=OFFLINE)
    app = Starlette(
        routes=[Route("/", page)], middleware=[Middleware(KeycloakMiddleware, engine=engine)]
    )
    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    assert _get(app, "/").text == "False []"
