"""kc_core.seed: the earlier middleware's arguments, defaults and decisions (no server)."""

from __future__ import annotations

import pytest
from toy_adapter import ToyAdapter

from kc_core import Config, ConfigError
from kc_core.engine import Engine
from kc_core.plugins import Plugins
from kc_core.seed import SEED_LOGOUT_URI, SeedAction, SeedMiddleware

OFFLINE = Config(server_url="http://127.0.0.1:9", realm="r", client_id="app", client_secret="s")


def engine_for(seed: SeedMiddleware) -> Engine:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    engine = Engine(OFFLINE, plugins=plugins, settings=seed.settings())
    seed.install(engine)
    return engine


def test_the_released_defaults() -> None:
    seed = SeedMiddleware()
    assert (seed.login_redirect_uri, seed.logout_uri, seed.logout_redirect_uri) == (
        "/",
        SEED_LOGOUT_URI,
        "/",
    )
    settings = seed.settings()
    assert (settings.prefix, settings.after_login_url, settings.after_logout_url) == (
        "/kc",
        "/",
        "/",
    )
    assert settings.allow_get_logout
    assert settings.logout_mode == "server"  # the earlier server-side logout


def test_the_docs_names_and_the_released_names_are_the_same_settings() -> None:
    docs = SeedMiddleware(
        "http://localhost:5000/kc/callback", redirect_uri="/howdy", logout_uri="/logout"
    )
    assert (docs.login_redirect_uri, docs.logout_uri, docs.logout_redirect_uri) == (
        "/howdy",
        "/logout",
        "/logout",  # the docs' app shows its own page at the logout URI
    )
    released = SeedMiddleware(login_redirect_uri="/home", logout_redirect_uri="/logout")
    assert (released.login_redirect_uri, released.logout_uri, released.logout_redirect_uri) == (
        "/home",
        "/kc/logout",
        "/logout",
    )
    with pytest.raises(ConfigError, match="give one"):
        SeedMiddleware(login_redirect_uri="/a", redirect_uri="/b")


def test_logout_mode_can_still_be_chosen() -> None:
    assert SeedMiddleware().settings({"KEYCLOAK_LOGOUT_MODE": "redirect"}).logout_mode == "redirect"


def test_every_page_but_the_logout_paths_needs_a_login() -> None:
    seed = SeedMiddleware(login_redirect_uri="/home", logout_redirect_uri="/logout",
                          exempt_paths=("/health",))  # fmt: skip
    engine = engine_for(seed)
    logged_in = {engine.settings.session_key: {"sid": "1"}}
    assert seed.action(engine, "/home", logged_in) is SeedAction.PROTECT
    assert seed.action(engine, "/anything", {}) is SeedAction.PROTECT
    assert seed.action(engine, "/logout", {}) is SeedAction.PASS  # the logout redirect
    assert seed.action(engine, "/health", {}) is SeedAction.PASS
    assert seed.action(engine, "/kc/logout", logged_in) is SeedAction.LOGOUT
    assert seed.action(engine, "/kc/logout", {}) is SeedAction.LOGOUT  # only redirects


def test_the_docs_logout_page_logs_out_then_shows_itself() -> None:
    seed = SeedMiddleware(redirect_uri="/howdy", logout_uri="/logout")
    engine = engine_for(seed)
    assert seed.action(engine, "/logout", {engine.settings.session_key: {}}) is SeedAction.LOGOUT
    assert seed.action(engine, "/logout", {}) is SeedAction.PASS
    assert seed.action(engine, "/logout", None) is SeedAction.PASS


def test_a_logout_redirect_that_is_the_landing_page_still_needs_a_login() -> None:
    seed = SeedMiddleware()  # both "/": "/" must not become public
    assert seed.action(engine_for(seed), "/", {}) is SeedAction.PROTECT
