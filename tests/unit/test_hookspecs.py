"""Each hook's call semantics, as kc_core.hookspecs states them."""

# The engine fixtures are imported from test_engine_unit; test arguments reuse their names.
# ruff: noqa: F811

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from kc_core import Config, hookspecs
from kc_core.engine import Engine, Identity
from kc_core.oidc import TokenSet
from kc_core.plugins import Plugins, hookimpl
from kc_core.stores.memory import MemoryTokenStore

from .test_engine_unit import (  # noqa: F401 - the fixtures, by name
    FakeKeycloak,
    bearer,
    engine,
    fake_keycloak,
    logged_in,
    make_engine,
    toy_plugins,
)
from .test_plugins import ToyAdapter, ToyRequest

FIRST_RESULT = {"kc_build_identity", "kc_select_tenant", "kc_token_store"}


def specs() -> dict[str, Any]:
    return {n: f for n, f in vars(hookspecs).items() if n.startswith("kc_") and callable(f)}


def test_every_hook_has_the_prefix_a_docstring_and_the_stated_semantics() -> None:
    for name, spec in specs().items():
        options = getattr(spec, "kc_core_spec")
        doc = inspect.getdoc(spec) or ""
        assert options["firstresult"] == (name in FIRST_RESULT), name
        stated = ("First non-None result", "All plugins", "Owning adapter only", "All results")
        assert any(s in doc for s in stated), f"{name} does not state its call semantics"


def test_request_types_collects_all_results() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(ToyRequest), name="a")
    plugins.register(ToyAdapter(int), name="b")
    results = plugins.manager.hook.kc_request_types()
    assert sorted(map(tuple, results), key=str) == sorted([(ToyRequest,), (int,)], key=str)


class Events:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def kc_after_refresh(self, request: Any, tokens: TokenSet) -> None:
        self.seen.append("refresh")

    @hookimpl
    def kc_after_logout(self, request: Any, identity: Any) -> None:
        self.seen.append("logout")


def test_events_are_broadcast_to_every_plugin(
    toy_plugins: Plugins, make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    first, second = Events(), Events()
    toy_plugins.register(first, name="first")
    toy_plugins.register(second, name="second")
    engine = make_engine(refresh_margin=60, logout_mode="local")
    fake_keycloak.answer_refresh()
    request = logged_in(engine, fake_keycloak.tokens(expires_in=30))
    assert engine.protect(request).allowed
    request.method, request.url = "POST", "http://app.test/kc/logout"
    engine.route(request)
    assert first.seen == second.seen == ["refresh", "logout"]


def test_built_in_identity_is_the_default(engine: Engine, fake_keycloak: FakeKeycloak) -> None:
    identity = engine.protect(bearer(fake_keycloak.token(preferred_username="alice"))).identity
    assert isinstance(identity, Identity)


class AppUser:
    def __init__(self, name: str) -> None:
        self.name = name


def test_a_plugin_identity_overrides_the_built_in_one_first_result_wins(
    toy_plugins: Plugins, make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    class Users:
        @hookimpl
        def kc_build_identity(self, claims: Mapping[str, Any], request: Any) -> Any:
            return AppUser(claims["preferred_username"])

    class Declines:
        @hookimpl
        def kc_build_identity(self, claims: Mapping[str, Any], request: Any) -> Any:
            return None  # not mine: the next implementation answers

    toy_plugins.register(Users(), name="users")
    toy_plugins.register(Declines(), name="declines")
    identity = make_engine().protect(bearer(fake_keycloak.token(preferred_username="bob"))).identity
    assert isinstance(identity, AppUser)
    assert identity.name == "bob"


def test_select_tenant_picks_the_configuration_per_request(
    toy_plugins: Plugins, fake_keycloak: FakeKeycloak
) -> None:
    class ByHost:
        @hookimpl
        def kc_select_tenant(self, request: Any) -> str | None:
            return "staff" if request.url.startswith("http://staff.") else "shop"

    toy_plugins.register(ByHost(), name="by-host")
    engine = Engine(
        {"shop": fake_keycloak.config(), "staff": fake_keycloak.config(realm="staff")},
        plugins=toy_plugins,
    )
    api = {"Accept": "application/json"}
    shop = engine.protect(ToyRequest(url="http://shop.test/x", headers=api)).response
    staff = engine.protect(ToyRequest(url="http://staff.test/x", headers=api)).response
    assert shop.header("WWW-Authenticate") == 'Bearer realm="shop"'
    assert staff.header("WWW-Authenticate") == 'Bearer realm="staff"'
    assert engine.client_for(ToyRequest(url="http://staff.test/")).config.realm == "staff"


def test_an_unknown_tenant_name_is_an_error(
    toy_plugins: Plugins, fake_keycloak: FakeKeycloak
) -> None:
    engine = Engine({"a": fake_keycloak.config(), "b": fake_keycloak.config()}, plugins=toy_plugins)
    with pytest.raises(Exception, match="no tenant named None"):
        engine.protect(ToyRequest())


def test_token_store_hook_provides_the_store(
    toy_plugins: Plugins, fake_keycloak: FakeKeycloak
) -> None:
    mine = MemoryTokenStore()
    asked: list[Config] = []

    class Stores:
        @hookimpl
        def kc_token_store(self, config: Config) -> Any:
            asked.append(config)
            return mine

    toy_plugins.register(Stores(), name="stores")
    engine = Engine(fake_keycloak.config(), plugins=toy_plugins)
    assert engine.store_for(ToyRequest()) is mine
    assert [c.realm for c in asked] == ["shop"]


def test_session_rotate_is_called_on_the_owning_adapter_at_login() -> None:
    # The engine calls it in the callback (see tests/integration); here: the facade binds it.
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    request = ToyRequest()
    plugins.adapter_for(request).rotate_session(request)
    assert request.rotations == 1
