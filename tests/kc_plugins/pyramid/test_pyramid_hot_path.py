"""The hooks' shortcuts on every request answer what WebOb's general paths answer."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import build_app
from kc_pyramid import bearer_required, engine_of
from kc_pyramid import plugin as hooks
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

from kc_core.engine import Engine, Requirement
from kc_core.testing.issuer import LocalIssuer, LocalUser


@pytest.mark.parametrize("status", [200, 204, 205, 302, 304, 401, 403, 503])
@pytest.mark.parametrize(
    "headers",
    [[], [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], [("Content-Length", "999")]],
)
def test_responses_are_those_webob_builds(status: int, headers: list[tuple[str, str]]) -> None:
    body = b"" if status in (204, 205, 304) else b'{"error": "x"}'
    expected = Response(
        body, status=status, headerlist=[("Content-Type", "application/json"), *headers]
    )
    for _ in range(3):  # a repeated refusal is copied: each copy the app's own to change
        built = hooks.build_response(status, body, "application/json", headers)
        assert type(built) is Response
        assert (built.status, built.headerlist, built.body) == (
            expected.status,
            expected.headerlist,
            expected.body,
        )
        built.headers["X-Changed"] = "by the app"
        built.set_cookie("seen", "1")
        built.body = b"changed"
        built.status = 418


def test_the_path_hook_decodes_a_path_that_is_not_ascii() -> None:
    assert hooks.kc_request_path(Request.blank("/orders/7")) == "/orders/7"
    assert hooks.kc_request_path(Request.blank("/caf%C3%A9/menu")) == "/café/menu"


def test_a_bearer_only_app_without_a_session_factory_gets_an_empty_session(
    offline_settings: dict[str, Any],
) -> None:
    app = build_app({**offline_settings, "keycloak.bearer_only": "true"}, session=False)
    request = Request.blank("/")
    request.registry = app.registry
    first = hooks.kc_session(request)
    first["kept"] = True
    assert hooks.kc_session(request) == {}  # nothing kept between calls


class CountingProtect:
    """Counts the engine's ``protect`` calls (what a kept verdict saves)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Engine.protect

        def protect(engine: Engine, *args: Any) -> Any:
            self.calls += 1
            return original(engine, *args)

        monkeypatch.setattr(Engine, "protect", protect)


def bearer_app(issuer: LocalIssuer) -> Any:
    """Two bearer-only routes: ``/read`` needs kc-api's reader, ``/write`` its writer."""
    settings = {
        "keycloak.server_url": issuer.server_url,
        "keycloak.realm": issuer.realm,
        "keycloak.client_id": "kc-api",
        "keycloak.bearer_only": "true",
    }

    def who(request: Any) -> Any:
        return Response(request.identity.username)

    with Configurator(settings=settings) as config:
        config.include("kc_pyramid")
        config.add_route("read", "/read")
        config.add_view(bearer_required(roles=["reader"])(who), route_name="read")
        config.add_route("write", "/write")
        config.add_view(who, route_name="write", permission="role:writer")
        return config.make_wsgi_app()


def get(app: Any, path: str, token: str) -> Any:
    return Request.blank(path, headers={"Authorization": f"Bearer {token}"}).get_response(app)


def test_a_route_a_kept_token_passed_admits_it_again_without_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with LocalIssuer(realm="shop", clients={"kc-api": None}).intercept() as issuer:
        app = bearer_app(issuer)
        reader = issuer.mint_access_token(LocalUser("alice", roles=("kc-api:reader",)), "kc-api")
        writer = issuer.mint_access_token(LocalUser("bob", roles=("kc-api:writer",)), "kc-api")
        for _ in range(2):  # validated, then kept: its verdict judged and kept
            assert get(app, "/read", reader).text == "alice"
        counted = CountingProtect(monkeypatch)
        for _ in range(3):
            assert get(app, "/read", reader).text == "alice"
        assert counted.calls == 0
        # Each route's requirement has its own verdict, and each token: refused every time.
        for _ in range(3):
            assert get(app, "/write", reader).status_code == 403
            assert get(app, "/read", writer).status_code == 403
            assert get(app, "/write", writer).text == "bob"
        assert counted.calls >= 6


def test_with_a_policy_enforcer_each_request_goes_to_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with LocalIssuer(realm="shop", clients={"kc-api": None}).intercept() as issuer:
        app = bearer_app(issuer)
        reader = issuer.mint_access_token(LocalUser("alice", roles=("kc-api:reader",)), "kc-api")
        for _ in range(3):
            assert get(app, "/read", reader).text == "alice"
        request = Request.blank("/")
        request.registry = app.registry
        engine = engine_of(request)
        monkeypatch.setattr(engine.authorizer, "enforcer", object())
        assert engine.admits(f"Bearer {reader}", Requirement.for_bearer(roles=["reader"])) is None
