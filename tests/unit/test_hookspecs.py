"""Each hook's call semantics, as kc_core.hookspecs states them.

Hooks that act on tokens (events, identities, tenants, token stores) are driven with tokens
from the real Keycloak (password grant on ``kc-web``), so those tests are marked
``integration``; the rest need no server.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from toy_adapter import ToyAdapter, ToyRequest

from kc_core import Client, Config, KeycloakError, hookspecs
from kc_core.engine import Engine, EngineSettings, Identity
from kc_core.oidc import TokenSet
from kc_core.plugins import Plugins, hookimpl
from kc_core.stores import SessionRecord, TokenStore
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.server import KeycloakRealm

FIRST_RESULT = {"kc_build_identity", "kc_select_tenant", "kc_token_store"}


# -- fixtures and helpers -------------------------------------------------------------------------


def realm_config(keycloak: KeycloakRealm) -> Config:
    return Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-web",
        client_secret=keycloak.client("kc-web").secret,
        connect_timeout=1.0,
        retries=0,
    )


@pytest.fixture
def toy_plugins() -> Plugins:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    return plugins


@pytest.fixture
def make_engine(keycloak: KeycloakRealm, toy_plugins: Plugins) -> Callable[..., Engine]:
    """An engine on the real realm; call it after registering the plugins under test."""

    def make(**settings: Any) -> Engine:
        return Engine(
            realm_config(keycloak), plugins=toy_plugins, settings=EngineSettings(**settings)
        )

    return make


@pytest.fixture(scope="module")
def grants(keycloak: KeycloakRealm) -> Iterator[Client]:
    """A kc-web client of its own, for password grants."""
    with Client(realm_config(keycloak)) as client:
        yield client


@pytest.fixture
def tokens_of(keycloak: KeycloakRealm, grants: Client) -> Callable[[str], TokenSet]:
    """Fresh tokens (and a fresh Keycloak session) for a realm user, by password grant."""

    def tokens(username: str) -> TokenSet:
        return grants.password_grant(username, keycloak.user(username).password)

    return tokens


def bearer(token: str, url: str = "http://app.test/private") -> ToyRequest:
    return ToyRequest(url=url, headers={"Authorization": f"Bearer {token}"})


def logged_in(store: TokenStore, tokens: TokenSet) -> ToyRequest:
    """A request whose session points at ``tokens`` (of a real Keycloak session) in ``store``."""
    claims = tokens.id_claims or {}
    store.set("key-1", SessionRecord(tokens, sub=str(claims["sub"]), sid=str(claims["sid"])), None)
    return ToyRequest(session={"kc": {"key": "key-1"}})


def specs() -> dict[str, Any]:
    return {n: f for n, f in vars(hookspecs).items() if n.startswith("kc_") and callable(f)}


# -- the contract ---------------------------------------------------------------------------------


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


# -- events: all plugins --------------------------------------------------------------------------


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
    toy_plugins: Plugins,
    make_engine: Callable[..., Engine],
    tokens_of: Callable[[str], TokenSet],
) -> None:
    first, second = Events(), Events()
    toy_plugins.register(first, name="first")
    toy_plugins.register(second, name="second")
    # Keycloak's tokens live 300 s: with a 600 s margin the session refreshes at once.
    engine = make_engine(refresh_margin=600, logout_mode="local")
    request = logged_in(engine.store_for(ToyRequest()), tokens_of("alice"))
    assert engine.protect(request).allowed
    request.method, request.url = "POST", "http://app.test/kc/logout"
    engine.route(request)
    assert first.seen == second.seen == ["refresh", "logout"]


# -- identities: first non-None result ------------------------------------------------------------


def test_built_in_identity_is_the_default(
    make_engine: Callable[..., Engine], tokens_of: Callable[[str], TokenSet]
) -> None:
    identity = make_engine().protect(bearer(tokens_of("alice").access_token)).identity
    assert isinstance(identity, Identity)
    assert identity.username == "alice"


class AppUser:
    def __init__(self, name: str) -> None:
        self.name = name


def test_a_plugin_identity_overrides_the_built_in_one_first_result_wins(
    toy_plugins: Plugins,
    make_engine: Callable[..., Engine],
    tokens_of: Callable[[str], TokenSet],
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
    toy_plugins.register(Declines(), name="declines")  # registered last: asked first
    identity = make_engine().protect(bearer(tokens_of("bob").access_token)).identity
    assert isinstance(identity, AppUser)
    assert identity.name == "bob"


# -- tenants and stores: first non-None result ----------------------------------------------------


def test_select_tenant_picks_the_configuration_per_request(
    toy_plugins: Plugins,
    keycloak: KeycloakRealm,
    make_config: Callable[..., Config],
    closed_port_url: str,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    class ByHost:
        @hookimpl
        def kc_select_tenant(self, request: Any) -> str | None:
            return "staff" if request.url.startswith("http://staff.") else "shop"

    toy_plugins.register(ByHost(), name="by-host")
    # Staff's Keycloak is down: a token it would have to check tells the tenants apart.
    staff_config = make_config(closed_port_url, realm="staff")
    engine = Engine({"shop": realm_config(keycloak), "staff": staff_config}, plugins=toy_plugins)
    api = {"Accept": "application/json"}
    shop = engine.protect(ToyRequest(url="http://shop.test/x", headers=api)).response
    staff = engine.protect(ToyRequest(url="http://staff.test/x", headers=api)).response
    assert shop.header("WWW-Authenticate") == f'Bearer realm="{keycloak.realm}"'
    assert staff.header("WWW-Authenticate") == 'Bearer realm="staff"'
    assert engine.client_for(ToyRequest(url="http://staff.test/")).config.realm == "staff"
    token = tokens_of("alice").access_token
    assert engine.protect(bearer(token, "http://shop.test/x")).allowed
    assert engine.protect(bearer(token, "http://staff.test/x")).response.status == 503


def test_an_unknown_tenant_name_is_an_error(
    toy_plugins: Plugins, make_config: Callable[..., Config], closed_port_url: str
) -> None:
    config = make_config(closed_port_url)
    engine = Engine({"a": config, "b": config}, plugins=toy_plugins)
    with pytest.raises(KeycloakError, match="no tenant named None"):
        engine.protect(ToyRequest())


def test_token_store_hook_provides_the_store(
    toy_plugins: Plugins,
    keycloak: KeycloakRealm,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    mine = MemoryTokenStore()
    asked: list[Config] = []

    class Stores:
        @hookimpl
        def kc_token_store(self, config: Config) -> Any:
            asked.append(config)
            return mine

    toy_plugins.register(Stores(), name="stores")
    engine = Engine(realm_config(keycloak), plugins=toy_plugins)
    assert engine.store_for(ToyRequest()) is mine
    assert [c.realm for c in asked] == [keycloak.realm]
    # The engine keeps its sessions there: one put in the hook's store is served.
    request = logged_in(mine, tokens_of("carol"))
    assert engine.protect(request).identity.username == "carol"


# -- the owning adapter only ----------------------------------------------------------------------


def test_session_rotate_is_called_on_the_owning_adapter_at_login() -> None:
    # The engine calls it in the callback (see tests/integration); here: the facade binds it.
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    request = ToyRequest()
    plugins.adapter_for(request).rotate_session(request)
    assert request.rotations == 1
