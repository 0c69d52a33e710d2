"""kc-flask without Keycloak: configuration, the extension's wiring, and what needs no server.

Apps here point at a closed port (``offline_app``): a request that reached for Keycloak would
answer 503, so these tests also show that the behaviour needs no server. Everything that
does talk to Keycloak is in ``test_flask_keycloak.py``, against the real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import kc_flask
import pytest
from flask import Flask, Response, session
from kc_flask import Keycloak, engine_of
from kc_flask import plugin as flask_plugin
from kc_flask.config import client_config, engine_settings
from kc_flask.extension import with_flask_adapter
from werkzeug.test import TestResponse

from kc_core import Config, ConfigError
from kc_core.engine import Engine
from kc_core.plugins import Plugins

AppFactory = Callable[..., Flask]
#: Config and engine are built without contacting the server: nothing listens here.
NO_SERVER = "http://127.0.0.1:9"


def as_json(response: TestResponse) -> Any:
    return json.loads(response.get_data(as_text=True))


# -- configuration -----------------------------------------------------------------------


def test_client_config_reads_keycloak_keys_and_parses_strings() -> None:
    config = client_config(
        {
            "KEYCLOAK_SERVER_URL": "https://sso.example.test/",
            "KEYCLOAK_REALM": "shop",
            "KEYCLOAK_CLIENT_ID": "web",
            "KEYCLOAK_CLIENT_SECRET": "s3cret",
            "KEYCLOAK_VERIFY_TOKEN_AUDIENCE": "false",
            "KEYCLOAK_LEEWAY": 5,
            "KEYCLOAK_SCOPES": "openid profile",
        }
    )
    assert config == Config(
        server_url="https://sso.example.test",
        realm="shop",
        client_id="web",
        client_secret="s3cret",
        verify_token_audience=False,
        leeway=5,
        scopes=("openid", "profile"),
    )


def test_engine_settings_come_from_keycloak_keys() -> None:
    settings = engine_settings(
        {
            "KEYCLOAK_PREFIX": "/auth",
            "KEYCLOAK_LOGOUT_MODE": "local",
            "KEYCLOAK_REFRESH_MARGIN": "60",
            "KEYCLOAK_ALLOW_GET_LOGOUT": "yes",
            "KEYCLOAK_EXEMPT_PATHS": "/health, /static/",
            "KEYCLOAK_SCOPES": "openid",  # the client's, not the engine's
        }
    )
    assert settings.login_path == "/auth/login"
    assert settings.logout_mode == "local"
    assert settings.refresh_margin == 60.0
    assert settings.allow_get_logout is True
    assert settings.exempt_paths == ("/health", "/static/")
    assert settings.scopes is None


@pytest.mark.parametrize("prefix", ["kc", "/kc/", ""])
def test_engine_settings_refuse_a_malformed_prefix(prefix: str) -> None:
    with pytest.raises(ConfigError, match="KEYCLOAK_PREFIX"):
        engine_settings({"KEYCLOAK_PREFIX": prefix})


def test_missing_realm_error_names_the_flask_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KEYCLOAK_REALM"):
        client_config(
            {"KEYCLOAK_SERVER_URL": "https://sso.example.test", "KEYCLOAK_CLIENT_ID": "web"},
            root_path=str(tmp_path),
        )


def test_keycloak_json_in_the_app_root_is_read(tmp_path: Path) -> None:
    (tmp_path / "keycloak.json").write_text(
        json.dumps(
            {
                "realm": "shop",
                "auth-server-url": "https://sso.example.test/",
                "resource": "web",
                "credentials": {"secret": "from-file"},
            }
        )
    )
    app = Flask(__name__, root_path=str(tmp_path))
    app.config["KEYCLOAK_CLIENT_SECRET"] = "from-app-config"  # keys win over the file
    Keycloak(app)
    config = engine_of(app).client.config
    assert (config.realm, config.client_id) == ("shop", "web")
    assert config.client_secret == "from-app-config"


# -- the extension -----------------------------------------------------------------------


def test_one_extension_serves_apps_of_a_factory_with_state_on_each_app() -> None:
    keycloak = Keycloak()
    apps = []
    for prefix in ("/kc", "/auth"):
        app = Flask(__name__)
        app.config.update(
            KEYCLOAK_SERVER_URL=NO_SERVER,
            KEYCLOAK_REALM="shop",
            KEYCLOAK_CLIENT_ID="web",
            KEYCLOAK_PREFIX=prefix,
        )
        keycloak.init_app(app)
        apps.append(app)
    first, second = (engine_of(app) for app in apps)
    assert isinstance(first, Engine)
    assert isinstance(second, Engine)
    assert first is not second
    assert keycloak.engine(apps[1]) is second
    assert not any(isinstance(v, Engine) for v in vars(keycloak).values())
    rules = [{r.rule for r in app.url_map.iter_rules()} for app in apps]
    assert {"/kc/login", "/kc/callback", "/kc/logout", "/kc/backchannel-logout"} <= rules[0]
    assert {"/auth/login", "/auth/callback"} <= rules[1]
    assert "/kc/login" not in rules[1]


def test_engine_of_an_app_without_the_extension_explains() -> None:
    with pytest.raises(RuntimeError, match="Keycloak\\(app\\)"):
        engine_of(Flask(__name__))


def test_the_adapter_is_found_through_its_entry_point() -> None:
    group = entry_points(group="kc_core.adapters")
    found = [ep for ep in group if ep.value == "kc_flask.plugin"]
    assert [ep.name for ep in found] == ["flask"], "kc-flask is installed without its entry point"
    plugins = Plugins()
    assert not plugins.manager.is_registered(flask_plugin), "loaded before any Flask request"
    app = Flask(__name__)
    with app.test_request_context("/x?a=1&a=2", headers={"X-Thing": "yes"}):
        from flask import request

        adapter = plugins.adapter_for(request._get_current_object())
        assert plugins.manager.get_plugin("flask") is flask_plugin
        with_flask_adapter(plugins)  # already there: not registered twice
        assert adapter.path(request) == "/x"
        assert adapter.query(request)["a"] == "1"
        assert adapter.header(request, "x-thing") == "yes"
        assert adapter.header(request, "X-Missing") is None


def test_header_hook_reads_content_type_and_length_without_http_prefix() -> None:
    app = Flask(__name__)
    with app.test_request_context("/", method="POST", data="a=1", content_type="text/plain"):
        from flask import request

        assert flask_plugin.kc_request_header(request, "Content-Type") == "text/plain"
        assert flask_plugin.kc_request_header(request, "content-length") == "3"


def test_only_the_backchannel_route_is_exempted_from_flask_wtf_csrf() -> None:
    from flask_wtf.csrf import CSRFProtect

    app = Flask(__name__)
    app.config.update(
        KEYCLOAK_SERVER_URL=NO_SERVER, KEYCLOAK_REALM="shop", KEYCLOAK_CLIENT_ID="w",
        SECRET_KEY="test", KEYCLOAK_ALLOW_GET_LOGOUT=True,
    )  # fmt: skip
    CSRFProtect(app)
    Keycloak(app)
    client = app.test_client()
    # Keycloak's server-to-server post carries no CSRF token: kc judges the logout token
    # (here it cannot fetch the realm's keys: 503).
    backchannel = client.post("/kc/backchannel-logout", data={"logout_token": "x.y.z"})
    assert backchannel.status_code == 503
    assert b"CSRF" not in backchannel.data
    # The logout form keeps Flask-WTF's check (it exempts by view name: each view has its own).
    answer = client.post("/kc/logout")
    assert answer.status_code == 400
    assert b"CSRF token is missing" in answer.data


# -- what an app answers without asking Keycloak ------------------------------------------------


def test_current_user_is_anonymous_for_a_visitor(offline_app: AppFactory) -> None:
    response = offline_app().test_client().get("/")
    assert as_json(response) == {"user": None, "authenticated": False}


def test_login_required_answers_401_json_to_api_clients(offline_app: AppFactory) -> None:
    response = offline_app().test_client().get("/private", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="kc-test"')


def test_login_required_sends_a_browser_to_the_login_route(offline_app: AppFactory) -> None:
    response = offline_app().test_client().get("/private?tab=2")
    assert response.status_code == 302
    assert response.location == "/kc/login?next=%2Fprivate%3Ftab%3D2"


def test_bearer_api_without_a_token_is_401(offline_app: AppFactory) -> None:
    missing = offline_app().test_client().get("/api/data")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert as_json(missing)["error"] == "unauthorized"


def test_the_repeated_401_keeps_its_bytes_and_headers(offline_app: AppFactory) -> None:
    client = offline_app().test_client()
    first, *again = (client.get("/api/data") for _ in range(3))  # built, then copied
    for answer in again:
        assert (answer.status, answer.data) == (first.status, first.data)
        assert list(answer.headers.items()) == list(first.headers.items())


def test_each_answer_is_a_response_of_its_own() -> None:
    body = b'{"error": "unauthorized"}'
    headers = [("WWW-Authenticate", 'Bearer realm="r"'), ("Cache-Control", "no-store")]
    for _ in range(3):  # the first is built, the next ones copied: each changed by the app
        answer = flask_plugin.build_response(401, body, "application/json", headers)
        assert type(answer) is Response
        assert (answer.status, answer.get_data()) == ("401 UNAUTHORIZED", body)
        assert list(answer.headers.items()) == [
            *headers,
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        answer.headers["X-Changed"] = "by the app"
        answer.set_cookie("seen", "1")
        answer.set_data(b"changed")
        answer.status_code = 418
        answer.call_on_close(lambda: None)
    with_cookie = [*headers, ("Set-Cookie", "kc=1; Path=/")]
    for _ in range(2):
        answer = flask_plugin.build_response(401, body, "application/json", with_cookie)
        assert answer.headers.getlist("Set-Cookie") == ["kc=1; Path=/"]


def test_roles_required_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        kc_flask.roles_required()


def test_logout_without_a_session_just_goes_home(offline_app: AppFactory) -> None:
    response = offline_app().test_client().post("/kc/logout")
    assert (response.status_code, response.location) == (302, "/")


def test_logout_by_get_is_refused_unless_allowed(offline_app: AppFactory) -> None:
    assert offline_app().test_client().get("/kc/logout").status_code == 405
    allowed = offline_app(KEYCLOAK_ALLOW_GET_LOGOUT=True).test_client().get("/kc/logout")
    assert allowed.status_code == 302


def test_backchannel_logout_without_a_token_is_400(offline_app: AppFactory) -> None:
    response = offline_app().test_client().post("/kc/backchannel-logout", data={})
    assert response.status_code == 400
    assert as_json(response)["error"] == "invalid_request"


@pytest.mark.parametrize("query", [{}, {"code": "x"}, {"code": "x", "state": "forged"}])
def test_callback_without_a_pending_login_is_400(
    offline_app: AppFactory, query: dict[str, str]
) -> None:
    response = offline_app().test_client().get("/kc/callback", query_string=query)
    assert response.status_code == 400


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(
    offline_app: Callable[..., Flask],
) -> None:
    app = offline_app()

    @app.get("/touch")
    def touch() -> str:
        session["touched"] = True
        return "ok"

    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    over_https = app.test_client().get("/touch", base_url="https://app.test")
    over_http = app.test_client().get("/touch", base_url="http://app.test")
    secure = over_https.headers["Set-Cookie"]
    plain = over_http.headers["Set-Cookie"]
    assert "HttpOnly" in secure
    assert "SameSite=Lax" in secure
    assert "Secure" in secure
    assert "HttpOnly" in plain
    assert "SameSite=Lax" in plain
    assert "Secure" not in plain


def test_an_explicit_samesite_choice_is_kept(offline_app: Callable[..., Flask]) -> None:
    assert offline_app(SESSION_COOKIE_SAMESITE="Strict").config["SESSION_COOKIE_SAMESITE"] == (
        "Strict"
    )
