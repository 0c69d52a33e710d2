"""kc-pyramid without Keycloak: settings, includeme, hooks, permissions and refusals.

Apps point at a closed port and are called in-process (``Request.blank(...)``); nothing
here needs a token, so nothing reaches a server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SESSION_SECRET, build_app
from kc_pyramid import (
    KeycloakSecurityPolicy,
    client_config,
    engine_of,
    engine_settings,
    principals_of,
    requirement_for,
)
from kc_pyramid import plugin as hooks
from pyramid.authorization import Authenticated, Everyone
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IRoutesMapper, ISecurityPolicy
from pyramid.request import Request
from pyramid.response import Response
from pyramid.scripting import prepare
from pyramid.security import Allowed
from pyramid.session import SignedCookieSessionFactory

from kc_core import ConfigError
from kc_core.engine import Guard, Identity, Requirement
from kc_core.errors import LoginError
from kc_core.plugins import Plugins

# -- settings ----------------------------------------------------------------------------------


def test_client_settings_are_read_from_ini_strings() -> None:
    config = client_config(
        {
            "keycloak.server_url": "https://sso.example.com/",
            "keycloak.realm": "shop",
            "keycloak.client_id": "shop-web",
            "keycloak.client_secret": "s3cret",
            "keycloak.scopes": "openid email",
            "keycloak.verify_token_audience": "false",
            "keycloak.leeway": "5",
            "other.setting": "ignored",
        }
    )
    assert (config.server_url, config.realm, config.client_id) == (
        "https://sso.example.com", "shop", "shop-web",
    )  # fmt: skip
    assert config.scopes == ("openid", "email")
    assert config.verify_token_audience is False
    assert config.leeway == 5.0


def test_client_settings_come_from_keycloak_json_when_not_in_settings(tmp_path: Path) -> None:
    adapter_file = tmp_path / "keycloak.json"
    adapter_file.write_text(
        json.dumps({"realm": "shop", "auth-server-url": "https://sso.example.com",
                    "resource": "shop-web", "credentials": {"secret": "from-file"}})
    )  # fmt: skip
    config = client_config(
        {"keycloak.settings": str(adapter_file), "keycloak.client_id": "from-settings"}
    )
    assert (config.realm, config.client_secret) == ("shop", "from-file")
    assert config.client_id == "from-settings"


def test_a_missing_setting_names_the_pyramid_key(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no ./keycloak.json
    with pytest.raises(ConfigError, match=r"keycloak\.realm"):
        client_config({"keycloak.server_url": "https://sso.example.com"})


def test_engine_settings_are_read_from_ini_strings() -> None:
    settings = engine_settings(
        {
            "keycloak.prefix": "/auth",
            "keycloak.logout_mode": "local",
            "keycloak.allow_get_logout": "true",
            "keycloak.refresh_margin": "12.5",
            "keycloak.exempt_paths": "/health /static/",
        }
    )
    assert settings.prefix == "/auth"
    assert settings.logout_mode == "local"
    assert settings.allow_get_logout is True
    assert settings.refresh_margin == 12.5
    assert settings.exempt_paths == ("/health", "/static/")


def test_an_invalid_engine_setting_names_the_pyramid_key() -> None:
    with pytest.raises(ConfigError, match=r"keycloak\.refresh_margin"):
        engine_settings({"keycloak.refresh_margin": "soon"})


def test_a_misspelt_keycloak_setting_fails_at_include(offline_settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"keycloak\.realms"):
        build_app({**offline_settings, "keycloak.realms": "shop"})


# -- includeme ---------------------------------------------------------------------------------


def test_include_adds_the_routes_and_the_security_policy(offline_settings: dict[str, Any]) -> None:
    app = build_app({**offline_settings, "keycloak.prefix": "/auth"})
    mapper = app.registry.queryUtility(IRoutesMapper)
    paths = {route.name: route.pattern for route in mapper.get_routes()}
    assert paths["keycloak.login"] == "/auth/login"
    assert paths["keycloak.callback"] == "/auth/callback"
    assert paths["keycloak.logout"] == "/auth/logout"
    assert paths["keycloak.backchannel_logout"] == "/auth/backchannel-logout"
    assert isinstance(app.registry.queryUtility(ISecurityPolicy), KeycloakSecurityPolicy)
    assert engine_of(_bound(Request.blank("/"), app)).settings.prefix == "/auth"


def test_include_without_a_session_factory_fails_at_commit(
    offline_settings: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError, match="set_session_factory"):
        build_app(offline_settings, session=False)


def test_a_bearer_only_app_needs_no_session(offline_settings: dict[str, Any]) -> None:
    app = build_app({**offline_settings, "keycloak.bearer_only": "true"}, session=False)
    answer = Request.blank("/api/data").get_response(app)
    assert answer.status_code == 401
    assert Request.blank("/").get_response(app).json == {"user": None, "userid": None}


def test_include_with_a_route_prefix_is_refused(offline_settings: dict[str, Any]) -> None:
    config = Configurator(settings=offline_settings)
    with pytest.raises(ConfigurationError, match=r"keycloak\.prefix"):
        config.include("kc_pyramid", route_prefix="/sso")


def test_the_app_may_replace_the_security_policy(offline_settings: dict[str, Any]) -> None:
    class Mine(KeycloakSecurityPolicy):
        pass

    with Configurator(settings=offline_settings) as config:
        config.set_session_factory(SignedCookieSessionFactory(SESSION_SECRET))
        config.include("kc_pyramid")
        config.set_security_policy(Mine())
    assert isinstance(config.registry.queryUtility(ISecurityPolicy), Mine)


def test_a_policy_overriding_permits_is_asked_for_each_permission(
    offline_settings: dict[str, Any],
) -> None:
    asked: list[str] = []

    class Open(KeycloakSecurityPolicy):
        def permits(self, request: Any, context: Any, permission: str) -> Any:
            asked.append(permission)
            return Allowed("open to all")

    with Configurator(settings=offline_settings) as config:
        config.set_session_factory(SignedCookieSessionFactory(SESSION_SECRET))
        config.include("kc_pyramid")
        config.set_security_policy(Open())
        config.add_route("data", "/data")
        config.add_view(
            lambda request: Response("data"), route_name="data", permission="role:admin"
        )
        app = config.make_wsgi_app()
    for _ in range(2):  # kc's own check would send this visitor to log in
        assert Request.blank("/data").get_response(app).text == "data"
    assert asked == ["role:admin", "role:admin"]


def test_an_engine_in_the_settings_is_used_as_is(offline_settings: dict[str, Any]) -> None:
    first = build_app(offline_settings)
    engine = first.registry["kc.engine"]
    second = build_app({"keycloak.engine": engine})
    assert second.registry["kc.engine"] is engine
    with pytest.raises(ConfigurationError, match=r"keycloak\.engine"):
        build_app({"keycloak.engine": "kc_core.engine.Requirement"})


# -- refusals without a user -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/private", "/perm/private", "/perm/admin", "/admin", "/doc/read", "/refused"]
)
def test_visitors_are_sent_to_log_in_and_come_back(
    offline_settings: dict[str, Any], path: str
) -> None:
    app = build_app(offline_settings)
    answer = Request.blank(f"{path}?a=1&b=2").get_response(app)
    assert answer.status_code == 302
    assert (
        answer.location
        == f"http://localhost/kc/login?next={path.replace('/', '%2F')}%3Fa%3D1%26b%3D2"
    )


@pytest.mark.parametrize("path", ["/private", "/perm/admin", "/api/data", "/api/perm", "/doc/edit"])
def test_api_clients_without_a_token_get_a_json_401(
    offline_settings: dict[str, Any], path: str
) -> None:
    app = build_app(offline_settings)
    answer = Request.blank(path, headers={"Accept": "application/json"}).get_response(app)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    assert answer.json == {"error": "unauthorized", "error_description": "authentication required"}


def test_a_malformed_authorization_header_gets_a_401(offline_settings: dict[str, Any]) -> None:
    app = build_app(offline_settings)
    for value in ("Basic eDp5", "Bearer", "Bearer  "):
        answer = Request.blank("/api/data", headers={"Authorization": value}).get_response(app)
        assert answer.status_code == 401, value
        assert answer.json["error"] in ("invalid_token", "unauthorized")


def test_public_pages_and_forget_work_for_visitors(offline_settings: dict[str, Any]) -> None:
    app = build_app(offline_settings)
    assert Request.blank("/public").get_response(app).text == "public"
    assert Request.blank("/").get_response(app).json == {"user": None, "userid": None}
    assert Request.blank("/forget", method="POST").get_response(app).text == "forgotten"


def test_the_login_route_answers_503_when_keycloak_is_down(
    offline_settings: dict[str, Any],
) -> None:
    app = build_app(offline_settings)
    answer = Request.blank("/kc/login?next=/private").get_response(app)
    assert answer.status_code == 503
    assert answer.json["error"] == "temporarily_unavailable"


def test_logout_by_get_is_refused_and_backchannel_needs_a_token(
    offline_settings: dict[str, Any],
) -> None:
    app = build_app(offline_settings)
    assert Request.blank("/kc/logout").get_response(app).status_code == 405
    refused = Request.blank("/kc/backchannel-logout", method="POST", POST={}).get_response(app)
    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_request"
    cross_site = Request.blank(
        "/kc/logout", method="POST", headers={"Origin": "https://evil.example"}
    ).get_response(app)
    assert cross_site.status_code == 403


def test_callback_without_or_with_a_wrong_state_is_a_400(
    offline_settings: dict[str, Any],
) -> None:
    app = build_app(offline_settings)
    assert Request.blank("/kc/callback").get_response(app).status_code == 400
    assert Request.blank("/kc/callback?code=x&state=y").get_response(app).status_code == 400


# -- permissions and principals ----------------------------------------------------------------


def test_permission_strings_name_requirements() -> None:
    assert requirement_for("authenticated") == Requirement()
    assert requirement_for("role:realm:admin") == Requirement(roles=("realm:admin",))
    assert requirement_for("role:reader") == Requirement(roles=("reader",))
    assert requirement_for("scope:email") == Requirement(scopes=("email",))
    assert requirement_for("edit") is None
    for malformed in ("role:", "role:realm:", "scope:"):
        with pytest.raises(ValueError, match=r"role spec|not a kc permission"):
            requirement_for(malformed)


def test_the_policy_gives_the_same_requirement_object_each_time() -> None:
    named = Requirement(roles=("kc-api:writer",))
    policy = KeycloakSecurityPolicy({"orders.write": named})
    assert policy.requirement("orders.write") is named
    assert policy.requirement("role:realm:admin") is policy.requirement("role:realm:admin")
    assert policy.requirement("view") is None


def test_principals_carry_the_user_and_the_roles() -> None:
    claims = {
        "sub": "u-1",
        "realm_access": {"roles": ["user", "admin"]},
        "resource_access": {"kc-api": {"roles": ["reader"]}, "kc-web": {"roles": ["editor"]}},
    }
    guard = Guard(identity=Identity.from_claims(claims), claims=claims)
    assert principals_of(guard, "kc-web") == [
        Everyone, Authenticated, "user:u-1", "role:realm:admin", "role:realm:user",
        "role:kc-api:reader", "role:kc-web:editor", "role:editor",
    ]  # fmt: skip
    assert principals_of(Guard(), "kc-web") == [Everyone]


def test_remember_is_not_how_users_log_in() -> None:
    with pytest.raises(LoginError, match=r"keycloak\.login"):
        KeycloakSecurityPolicy().remember(None, "alice")


def _bound(request: Request, app: Any) -> Request:
    request.registry = app.registry
    return request


# -- hooks -------------------------------------------------------------------------------------


@pytest.fixture
def app(offline_settings: dict[str, Any]) -> Any:
    return build_app(offline_settings)


def test_the_adapter_is_found_through_its_entry_point() -> None:
    plugins = Plugins()
    assert "pyramid" in plugins.adapter_names()
    assert plugins.adapter_for(Request.blank("/")).name == "pyramid"


def test_hooks_read_the_request(app: Any) -> None:
    request = Request.blank(
        "https://shop.example.com/orders?a=1&a=2&b=3",
        headers={"Authorization": "Bearer t", "X-Requested-With": "XMLHttpRequest",
                 "Cookie": "c=d"},
        environ={"REMOTE_ADDR": "10.0.0.7"},
    )  # fmt: skip
    request.registry = app.registry
    assert hooks.kc_request_method(request) == "GET"
    assert hooks.kc_request_url(request) == "https://shop.example.com/orders?a=1&a=2&b=3"
    assert hooks.kc_request_path(request) == "/orders"
    assert hooks.kc_request_query(request) == {"a": "1", "b": "3"}
    assert hooks.kc_request_header(request, "authorization") == "Bearer t"
    assert hooks.kc_request_header(request, "X-Requested-With") == "XMLHttpRequest"
    assert hooks.kc_request_header(request, "origin") is None
    assert dict(hooks.kc_request_cookies(request)) == {"c": "d"}
    assert hooks.kc_request_client_address(request) == "10.0.0.7"
    assert hooks.kc_request_is_secure(request) is True


def test_the_form_hook_gives_the_first_value(app: Any) -> None:
    request = Request.blank(
        "/kc/backchannel-logout", method="POST", POST="logout_token=a&logout_token=b"
    )
    request.registry = app.registry
    assert hooks.kc_request_form(request) == {"logout_token": "a"}
    request_type = Request.blank("/", content_type="application/json", method="POST")
    assert hooks.kc_request_form(request_type) == {}


def test_responses_keep_every_set_cookie() -> None:
    request = Request.blank("/")
    headers = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    redirect = hooks.kc_redirect(request, "/kc/login?next=%2F", headers)
    assert redirect.status_code == 302
    assert redirect.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert redirect.headers["Location"] == "/kc/login?next=%2F"
    answer = hooks.kc_response(request, 401, b"{}", "application/json", headers)
    assert (answer.status_code, answer.body, answer.content_type) == (
        401,
        b"{}",
        "application/json",
    )
    assert answer.headers.getall("Set-Cookie") == ["a=1", "b=2"]


def test_the_session_hook_fails_clearly_without_a_session_factory(
    offline_settings: dict[str, Any],
) -> None:
    config = Configurator(settings=offline_settings)
    config.include("kc_pyramid")  # never committed: the commit-time check never runs
    request = Request.blank("/")
    request.registry = config.registry
    with pytest.raises(ConfigurationError, match="set_session_factory"):
        hooks.kc_session(request)


def test_the_session_is_rotated_keeping_its_data(app: Any) -> None:
    env = prepare(registry=app.registry, request=Request.blank("/"))
    try:
        session = hooks.kc_session(env["request"])
        session["kc.logins"] = {"s": {"next": "/"}}
        hooks.kc_session_rotate(env["request"])
        assert dict(session) == {"kc.logins": {"s": {"next": "/"}}}
    finally:
        env["closer"]()
