"""The adapter toolkit (kc_core.adapters): decorators, users, settings, hooks, seed decisions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from toy_adapter import ToyAdapter

from kc_core import Config, ConfigError
from kc_core.adapters import (
    ENDPOINTS,
    MAX_FORM_BYTES,
    AnonymousRoles,
    KeycloakUserBase,
    RequirementShorthands,
    ResponseTemplates,
    SettingsReader,
    UserMemo,
    ViewDecorators,
    adapter_registration,
    first_values,
    needs_login,
    read_form_body,
    response_hooks,
    role_names,
    settings_file,
    wsgi_environ_key,
)
from kc_core.engine import Engine, EngineSettings, Guard, Identity, Requirement
from kc_core.plugins import Plugins

CLAIMS = {
    "sub": "u-1",
    "azp": "kc-web",
    "preferred_username": "ada",
    "realm_access": {"roles": ["user", "admin"]},
    "resource_access": {"kc-web": {"roles": ["editor"]}, "kc-api": {"roles": ["reader"]}},
}
OFFLINE = Config(server_url="http://127.0.0.1:9", realm="shop", client_id="kc-web")


# -- decorators -------------------------------------------------------------------------------


def _recording() -> tuple[ViewDecorators, list[Requirement]]:
    seen: list[Requirement] = []

    def protect(requirement: Requirement) -> Callable[[Any], Any]:
        seen.append(requirement)
        return lambda view: view

    return ViewDecorators(protect), seen


def test_login_required_bare_and_called_forms_protect_with_the_same_requirement() -> None:
    decorators, seen = _recording()

    def view(n: int) -> int:
        return n

    assert decorators.login_required(view) is view
    assert decorators.login_required(scopes=["email"])(view) is view
    assert seen == [Requirement(), Requirement(scopes=("email",))]


def test_roles_and_bearer_required_build_the_engine_requirements() -> None:
    decorators, seen = _recording()
    decorators.roles_required("realm:admin", "kc-api:reader", any_role=True)
    decorators.bearer_required(lambda: None)
    decorators.bearer_required(roles=["kc-api:reader"], scopes=["orders"])
    assert seen == [
        Requirement(roles=("realm:admin", "kc-api:reader"), any_role=True),
        Requirement.for_bearer(),
        Requirement.for_bearer(["kc-api:reader"], scopes=["orders"]),
    ]


def test_requirement_shorthands_build_the_requirements_the_decorators_do() -> None:
    shorthands = RequirementShorthands(lambda requirement: requirement)
    assert shorthands.require_login(scopes=["email"]) == Requirement(scopes=("email",))
    assert shorthands.require_roles("realm:admin", any_role=True) == Requirement.for_roles(
        ["realm:admin"], any_role=True
    )
    assert shorthands.require_bearer(roles=["kc-api:reader"]) == Requirement.for_bearer(
        ["kc-api:reader"]
    )
    with pytest.raises(ValueError, match="at least one role"):
        shorthands.require_roles()


def test_read_form_body_takes_urlencoded_bodies_only_and_caps_their_size() -> None:
    async def read(content_type: str, *chunks: bytes) -> dict[str, str]:
        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return await read_form_body(content_type, stream())

    form = "application/x-www-form-urlencoded; charset=utf-8"
    assert asyncio.run(read(form, b"a=1&", b"a=2&b=")) == {"a": "1", "b": ""}
    assert asyncio.run(read("application/json", b"a=1")) == {}
    assert asyncio.run(read(form, b"a=", b"x" * MAX_FORM_BYTES)) == {}


def test_roles_required_without_a_role_is_refused() -> None:
    decorators, _ = _recording()
    with pytest.raises(ValueError, match="at least one role"):
        decorators.roles_required()


# -- users ------------------------------------------------------------------------------------


def test_user_base_reads_roles_from_the_identity_claims() -> None:
    user = KeycloakUserBase(Identity.from_claims(CLAIMS), "token")
    assert user.sub == "u-1"
    assert user.realm_roles == {"user", "admin"}
    assert user.client_roles("kc-api") == {"reader"}
    assert user.has_role("realm:admin")
    assert user.has_role("kc-api:reader")
    assert user.has_role("editor")  # a bare role of the token's own client (azp)
    assert not user.has_role("realm:root")
    assert user.username == "ada"
    assert (user.email, user.name) == (None, None)  # absent from these claims
    assert repr(user) == "KeycloakUserBase(sub='u-1', username='ada')"


def test_user_base_bare_roles_belong_to_the_client_it_was_given() -> None:
    user = KeycloakUserBase(Identity.from_claims(CLAIMS), None, client_id="kc-api")
    assert user.has_role("reader")
    assert not user.has_role("editor")
    with pytest.raises(ValueError, match="not a role spec"):
        user.has_role("realm:")


def test_user_base_hides_private_names_of_the_identity() -> None:
    user = KeycloakUserBase(Identity.from_claims({"sub": "u-2"}), None)
    assert user.identity_text("email") is None
    own = KeycloakUserBase(SimpleNamespace(sub="u-3", tenant="shop"), None)
    assert own.tenant == "shop"  # an app identity's other attributes read through
    with pytest.raises(AttributeError):
        user._secret


def test_anonymous_roles_grant_nothing() -> None:
    anonymous = AnonymousRoles()
    assert anonymous.realm_roles == frozenset()
    assert anonymous.client_roles("kc-web") == frozenset()
    assert not anonymous.has_role("realm:admin")


def test_role_names_spell_every_role_with_its_owner_and_own_roles_bare() -> None:
    assert role_names(CLAIMS) == [
        "realm:admin", "realm:user", "kc-api:reader", "kc-web:editor",
    ]  # fmt: skip
    assert role_names(CLAIMS, client_id="kc-web")[-2:] == ["kc-web:editor", "editor"]
    assert role_names({"resource_access": "not a mapping"}) == []


def test_user_memo_makes_one_user_per_identity_and_token() -> None:
    memo = UserMemo()
    identity = Identity.from_claims(CLAIMS)
    first = memo.get(identity, "t1", object)
    assert memo.get(identity, "t1", object) is first
    assert memo.get(identity, "t2", object) is not first


# -- settings ---------------------------------------------------------------------------------


def _reader(**options: Any) -> SettingsReader:
    return SettingsReader(
        options.pop("prefix", "KEYCLOAK_"), lambda key: f"set it ({key})", **options
    )


def test_settings_reader_names_the_missing_key_the_framework_way() -> None:
    with pytest.raises(ConfigError, match=r"- set it \(realm\)") as raised:
        _reader().client_config({"KEYCLOAK_SERVER_URL": "http://127.0.0.1:9"})
    assert raised.value.key == "realm"


def test_settings_reader_reads_lower_case_keys_for_both_settings() -> None:
    reader = _reader(prefix="keycloak.", upper=False, engine_hint=lambda key: f"check {key}")
    values = {
        "keycloak.server_url": "http://127.0.0.1:9",
        "keycloak.realm": "shop",
        "keycloak.client_id": "kc-web",
        "keycloak.prefix": "/auth",
    }
    assert reader.client_config(values).realm == "shop"
    assert reader.engine_settings(values).prefix == "/auth"
    with pytest.raises(ConfigError, match="- check refresh_margin"):
        reader.engine_settings({"keycloak.refresh_margin": "soon"})


def test_settings_reader_overrides_win_and_bad_values_name_the_key() -> None:
    reader = _reader()
    assert reader.engine_settings({"KEYCLOAK_PREFIX": "/a"}, prefix="/b") == EngineSettings(
        prefix="/b"
    )
    with pytest.raises(ConfigError, match=r"KEYCLOAK_REFRESH_MARGIN.*- set it"):
        reader.engine_settings({"KEYCLOAK_REFRESH_MARGIN": "soon"})


def test_settings_reader_turns_type_errors_into_config_errors_when_asked() -> None:
    values = {
        "KEYCLOAK_SERVER_URL": "http://127.0.0.1:9",
        "KEYCLOAK_REALM": "shop",
        "KEYCLOAK_CLIENT_ID": "kc-web",
        "KEYCLOAK_SCOPES": 5,  # not a list of scopes
    }
    with pytest.raises(TypeError):
        _reader().client_config(values)
    with pytest.raises(ConfigError, match="invalid") as raised:
        _reader(invalid_key="KEYCLOAK").client_config(values)
    assert raised.value.key == "KEYCLOAK"


def test_settings_file_is_named_relative_to_the_root_else_found_there(tmp_path: Path) -> None:
    assert settings_file("conf/kc.json", tmp_path) == tmp_path / "conf" / "kc.json"
    assert settings_file("/etc/kc.json", tmp_path) == Path("/etc/kc.json")
    assert settings_file(None, tmp_path) is None
    (tmp_path / "keycloak.json").write_text("{}")
    assert settings_file(None, tmp_path) == tmp_path / "keycloak.json"
    assert settings_file(None, None) is None


# -- hook modules -----------------------------------------------------------------------------


def test_adapter_registration_registers_the_hooks_module_once() -> None:
    hooks = ModuleType("toy_hooks")
    with_toy_adapter = adapter_registration(hooks, "toy")
    plugins = Plugins(load_entry_points=False)
    assert with_toy_adapter(plugins) is plugins
    with_toy_adapter(plugins)
    assert plugins.manager.get_plugin("toy") is hooks
    assert with_toy_adapter.__name__ == "with_toy_adapter"


def test_response_hooks_build_redirects_and_responses_with_every_header() -> None:
    built: list[tuple[int, bytes, str | None, list[tuple[str, str]]]] = []

    def build(
        status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]]
    ) -> str:
        built.append((status, body, content_type, list(headers)))
        return "response"

    kc_redirect, kc_response = response_hooks(build)
    cookies = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert kc_redirect(request=None, location="/kc/login", headers=cookies) == "response"
    kc_response(request=None, status=401, body=b"{}", content_type="x/json", headers=())
    assert built == [
        (302, b"", None, [("Location", "/kc/login"), *cookies]),
        (401, b"{}", "x/json", []),
    ]


def test_first_values_keep_the_first_of_repeated_keys() -> None:
    assert first_values([("a", "1"), ("b", "2"), ("a", "3")]) == {"a": "1", "b": "2"}


def test_wsgi_environ_key_spells_headers_as_the_environ_does() -> None:
    assert wsgi_environ_key("Authorization") == "HTTP_AUTHORIZATION"
    assert wsgi_environ_key("x-requested-with") == "HTTP_X_REQUESTED_WITH"
    assert wsgi_environ_key("Content-Type") == "CONTENT_TYPE"


def test_endpoints_serve_the_engine_method_of_their_name() -> None:
    assert [e.name for e in ENDPOINTS] == ["login", "callback", "logout", "backchannel_logout"]
    assert [e.name for e in ENDPOINTS if e.server_to_server] == ["backchannel_logout"]

    class Recorder:
        def __getattr__(self, name: str) -> Callable[[Any], str]:
            return lambda request: f"{name}:{request}"

    assert ENDPOINTS[3].serve(Recorder(), "r") == "backchannel_logout:r"  # type: ignore[arg-type]


# -- seed middlewares -------------------------------------------------------------------------


class _Response:
    """A framework response as far as needs_login reads it: case-insensitive headers."""

    def __init__(self, status: int, location: str | None = None) -> None:
        self.status_code = status
        self.headers = _Headers({"location": location} if location else {})


class _Headers(dict[str, str]):
    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@pytest.fixture(scope="module")
def engine() -> Engine:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    settings = EngineSettings(exempt_paths=("/health",))
    return Engine(OFFLINE, plugins=plugins, settings=settings)


def test_needs_login_only_for_the_engines_login_redirect(engine: Engine) -> None:
    assert needs_login(engine, Guard(response=_Response(302, "/kc/login?next=%2Fpage")))
    assert needs_login(engine, Guard(response=_Response(302, "/app/kc/login?next=%2Fapp%2F")))
    assert not needs_login(engine, Guard())  # admitted
    assert not needs_login(engine, Guard(response=_Response(401)))  # an API client
    assert not needs_login(engine, Guard(response=_Response(503)))
    assert not needs_login(engine, Guard(response=_Response(302, "https://elsewhere/")))
    user = Identity.from_claims(CLAIMS)
    assert not needs_login(engine, Guard(identity=user, response=_Response(403)))


# -- ResponseTemplates ---------------------------------------------------------------------------


def counting_templates(
    snapshot: Callable[[dict[str, Any]], Any] = dict, kept: int = 64
) -> tuple[ResponseTemplates[dict[str, Any], Any], list[int]]:
    built: list[int] = []

    def build(status: int, body: bytes, content_type: str | None, headers: Any) -> dict[str, Any]:
        built.append(status)
        return {"status": status, "body": body, "headers": list(headers)}

    return ResponseTemplates(build, snapshot, dict, kept=kept), built


def test_a_repeated_refusal_is_built_once_then_copied() -> None:
    templates, built = counting_templates()
    challenge = [("WWW-Authenticate", 'Bearer realm="r"')]
    answers = [templates(401, b"{}", "application/json", challenge) for _ in range(3)]
    assert built == [401]
    assert answers[0] == answers[1] == answers[2]
    assert answers[1] is not answers[2]  # each a copy of its own
    templates(401, b"{}", "application/json", [("WWW-Authenticate", 'Bearer error="x"')])
    assert built == [401, 401]  # another answer: a template of its own


def test_cookies_redirects_and_unknown_responses_are_built_every_time() -> None:
    templates, built = counting_templates()
    for _ in range(2):
        templates(401, b"", None, [("set-cookie", "kc=; Max-Age=0")])
        templates(302, b"", None, [("Location", "/kc/login")])
    assert built == [401, 302, 401, 302]
    refusing, built = counting_templates(snapshot=lambda response: None)
    for _ in range(2):
        refusing(403, b"", None, [])
    assert built == [403, 403]


def test_templates_are_bounded() -> None:
    templates, built = counting_templates(kept=2)
    for status in (401, 403, 503, 401):  # the third drops all: 401 is built again
        templates(status, b"", None, [])
    assert built == [401, 403, 503, 401]
    templates(503, b"", None, [])  # kept with the 401 since
    templates(403, b"", None, [])
    assert built == [401, 403, 503, 401, 403]
