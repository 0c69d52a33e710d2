"""kc-django without a server: settings, adapter hooks, user objects, mixins, system checks.

Engines built here name a Keycloak on a closed port; nothing in these tests contacts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.backends.cache import SessionStore
from django.core.checks import run_checks
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.test import RequestFactory
from kc_django import (
    AnonymousUser,
    BearerRequiredMixin,
    KeycloakUser,
    LoginRequiredMixin,
    RolesRequiredMixin,
    engine_of,
    roles_required,
)
from kc_django import plugin as hooks
from kc_django.config import client_config, engine_settings, project_values

from kc_core import ConfigError
from kc_core.engine import Engine, Identity
from kc_core.plugins import Plugins

OFFLINE = {
    "SERVER_URL": "http://127.0.0.1:9",
    "REALM": "kc-test",
    "CLIENT_ID": "kc-web",
    "CLIENT_SECRET": "kc-web-secret",
}


class _Settings:
    """A stand-in for ``django.conf.settings`` with just the given names."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


# -- settings ------------------------------------------------------------------------------------


def test_settings_come_from_the_keycloak_dict_and_keycloak_names_win() -> None:
    values = project_values(
        _Settings(KEYCLOAK={**OFFLINE, "prefix": "/auth"}, KEYCLOAK_REALM="shop", DEBUG=True)
    )
    assert values["KEYCLOAK_REALM"] == "shop"
    assert values["KEYCLOAK_PREFIX"] == "/auth"
    assert "DEBUG" not in values
    assert client_config(values).realm == "shop"
    assert engine_settings(values).callback_path == "/auth/callback"


def test_string_settings_are_parsed_by_their_type() -> None:
    values = project_values(
        _Settings(
            KEYCLOAK=OFFLINE,
            KEYCLOAK_REFRESH_MARGIN="12.5",
            KEYCLOAK_ALLOW_GET_LOGOUT="true",
            KEYCLOAK_EXEMPT_PATHS="/health /static/",
            KEYCLOAK_RETRIES="0",
            KEYCLOAK_SCOPES="openid email",
        )
    )
    settings = engine_settings(values)
    assert settings.refresh_margin == 12.5
    assert settings.allow_get_logout is True
    assert settings.exempt_paths == ("/health", "/static/")
    config = client_config(values)
    assert config.retries == 0
    assert config.scopes == ("openid", "email")


def test_a_missing_setting_names_what_to_set() -> None:
    with pytest.raises(ConfigError, match=r"settings.KEYCLOAK\['REALM'\] or KEYCLOAK_REALM"):
        client_config(
            project_values(_Settings(KEYCLOAK={"SERVER_URL": "http://kc", "CLIENT_ID": "x"}))
        )
    with pytest.raises(ConfigError, match="KEYCLOAK_REFRESH_MARGIN"):
        engine_settings({"KEYCLOAK_REFRESH_MARGIN": "soon"})
    with pytest.raises(ConfigError, match="must be a dict"):
        project_values(_Settings(KEYCLOAK="http://kc"))


def test_keycloak_json_is_read_from_base_dir(tmp_path: Path) -> None:
    (tmp_path / "keycloak.json").write_text(
        json.dumps(
            {
                "realm": "from-file",
                "auth-server-url": "http://127.0.0.1:9",
                "resource": "kc-web",
                "credentials": {"secret": "s"},
            }
        )
    )
    assert client_config({}, base_dir=tmp_path).realm == "from-file"
    assert client_config({"KEYCLOAK_REALM": "shop"}, base_dir=tmp_path).realm == "shop"
    (tmp_path / "conf").mkdir()
    (tmp_path / "keycloak.json").rename(tmp_path / "conf" / "sso.json")
    named = {"KEYCLOAK_SETTINGS": "conf/sso.json"}
    assert client_config(named, base_dir=tmp_path).client_id == "kc-web"


def test_the_engine_is_rebuilt_when_keycloak_settings_change(
    use_settings: Callable[..., None],
) -> None:
    use_settings(KEYCLOAK=OFFLINE)
    first = engine_of()
    assert engine_of() is first
    use_settings(KEYCLOAK={**OFFLINE, "PREFIX": "/sso"})
    assert engine_of() is not first
    assert engine_of().settings.login_path == "/sso/login"


def test_a_ready_engine_may_be_given_by_object_or_dotted_path(
    use_settings: Callable[..., None],
) -> None:
    from kc_core import Config

    engine = Engine(Config(server_url="http://127.0.0.1:9", realm="r", client_id="c"),
                    plugins=Plugins(load_entry_points=False))  # fmt: skip
    use_settings(KEYCLOAK_ENGINE=engine)
    assert engine_of() is engine
    assert "django" in engine.plugins.adapter_names()
    use_settings(KEYCLOAK_ENGINE="test_django_unit.make_engine")
    assert engine_of().client.config.realm == "dotted"
    use_settings(KEYCLOAK_ENGINE=object())
    with pytest.raises(ConfigError, match="must be an Engine"):
        engine_of()


def make_engine() -> Engine:
    from kc_core import Config

    return Engine(Config(server_url="http://127.0.0.1:9", realm="dotted", client_id="c"))


# -- adapter hooks -------------------------------------------------------------------------------


def test_hooks_read_the_request_as_the_engine_needs_it() -> None:
    request = RequestFactory().post(
        "/orders/7?a=1&a=2",
        "logout_token=t1&logout_token=t2",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION="Bearer abc",
        HTTP_HOST="shop.example:8000",
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        REMOTE_ADDR="10.0.0.7",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.conf.settings.ALLOWED_HOSTS", ["shop.example"])
        assert hooks.kc_request_url(request) == "http://shop.example:8000/orders/7?a=1&a=2"
    assert hooks.kc_request_method(request) == "POST"
    assert hooks.kc_request_path(request) == "/orders/7"
    assert hooks.kc_request_query(request) == {"a": "1"}
    assert hooks.kc_request_form(request) == {"logout_token": "t1"}
    assert hooks.kc_request_header(request, "Authorization") == "Bearer abc"
    assert hooks.kc_request_header(request, "x-requested-with") == "XMLHttpRequest"
    assert hooks.kc_request_header(request, "content-type") == "application/x-www-form-urlencoded"
    assert hooks.kc_request_header(request, "origin") is None
    assert hooks.kc_request_client_address(request) == "10.0.0.7"
    assert hooks.kc_request_is_secure(request) is False
    assert hooks.kc_request_is_secure(RequestFactory().get("/", secure=True)) is True


def test_without_session_middleware_the_session_is_empty_and_not_kept() -> None:
    request = RequestFactory().get("/")
    session = hooks.kc_session(request)
    assert dict(session) == {}
    hooks.kc_session_rotate(request)  # no session: nothing to rotate, no error


def test_rotation_gives_the_session_a_new_key_and_a_new_csrf_token() -> None:
    request = RequestFactory().get("/")
    session = SessionStore()
    session["kc.logins"] = {"state": {"next": "/"}}
    session.save()
    old_key = session.session_key
    request.session = session
    old_token = get_token(request)
    hooks.kc_session_rotate(request)
    assert session.session_key != old_key
    assert not SessionStore().exists(old_key)
    assert session["kc.logins"] == {"state": {"next": "/"}}
    assert get_token(request) != old_token


def test_responses_keep_every_set_cookie_and_header() -> None:
    request = RequestFactory().get("/")
    headers = [
        ("Set-Cookie", "kc_0=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"),
        ("Set-Cookie", "kc_1=; Path=/; Max-Age=0"),
        ("Cache-Control", "no-store"),
        ("WWW-Authenticate", 'Bearer realm="kc-test"'),
    ]
    response = hooks.kc_response(request, 401, b"{}", "application/json", headers)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    assert response.cookies["kc_0"].value == "abc"
    assert response.cookies["kc_0"]["httponly"] is True
    assert response.cookies["kc_0"]["samesite"] == "Lax"
    assert response.cookies["kc_1"]["max-age"] == "0"
    redirect = hooks.kc_redirect(request, "/kc/login?next=%2F", [("Cache-Control", "no-store")])
    assert (redirect.status_code, redirect["Location"]) == (302, "/kc/login?next=%2F")
    assert redirect["Cache-Control"] == "no-store"


def test_the_adapter_owns_django_requests() -> None:
    plugins = Plugins()
    assert plugins.adapter_for(HttpRequest()).name == "django"
    assert plugins.adapter_for(RequestFactory().get("/")).name == "django"


# -- users, decorators, mixins -------------------------------------------------------------------


def test_the_keycloak_user_speaks_djangos_user_interface() -> None:
    identity = Identity.from_claims(
        {"sub": "u-1", "preferred_username": "bob", "email": "bob@example.test",
         "name": "Bob Brown", "given_name": "Bob",
         "realm_access": {"roles": ["user"]},
         "resource_access": {"kc-web": {"roles": ["editor"]}, "kc-api": {"roles": ["reader"]}}}
    )  # fmt: skip
    user = KeycloakUser(identity, "token", client_id="kc-web")
    assert (user.is_authenticated, user.is_anonymous) == (True, False)
    assert (user.pk, user.get_username(), str(user)) == ("u-1", "bob", "bob")
    assert (user.get_full_name(), user.get_short_name()) == ("Bob Brown", "Bob")
    assert user.has_role("realm:user")
    assert user.has_role("kc-api:reader")
    assert user.has_role("editor")
    assert not user.has_role("realm:admin")
    assert not user.has_perm("auth.view_user")
    assert user.has_perms([])
    anonymous = AnonymousUser()
    assert (anonymous.is_authenticated, anonymous.is_anonymous) == (False, True)
    assert not anonymous.has_role("realm:user")
    assert anonymous.get_username() == ""
    assert anonymous.pk is None


def test_mixins_build_their_requirement_once_per_class() -> None:
    class Reports(RolesRequiredMixin):
        roles_required = ("realm:admin", "kc-api:reader")
        any_role = True

    class Api(BearerRequiredMixin):
        roles_required = ("kc-api:writer",)

    class Page(LoginRequiredMixin):
        scopes_required = ("email",)

    assert Reports().get_requirement() is Reports().get_requirement()
    assert Reports.requirement.roles == ("realm:admin", "kc-api:reader")
    assert Reports.requirement.any_role
    assert Api.requirement.bearer_only
    assert Api.requirement.api
    assert Page.requirement.scopes == ("email",)

    class Forgotten(RolesRequiredMixin):
        pass

    with pytest.raises(ValueError, match="needs roles_required"):
        Forgotten().get_requirement()
    with pytest.raises(ValueError, match="at least one role"):
        roles_required()


# -- system checks ---------------------------------------------------------------------------------


def _check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id and "kc_django" in message.id}


def test_checks_report_settings_middleware_and_urls(use_settings: Callable[..., None]) -> None:
    use_settings(KEYCLOAK=OFFLINE)
    assert _check_ids() == set()
    use_settings(KEYCLOAK={**OFFLINE, "PREFIX": "/sso"})
    assert _check_ids() == {"kc_django.E002"}
    use_settings(
        KEYCLOAK=OFFLINE,
        MIDDLEWARE=[
            "kc_django.middleware.KeycloakMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
    )
    assert _check_ids() == {"kc_django.W001", "kc_django.W002"}
    use_settings(KEYCLOAK={"SERVER_URL": "http://127.0.0.1:9"})
    assert "kc_django.E001" in _check_ids()
