"""Route rules (``exempt_routes``) and CORS preflights in the engine's protection layer."""

from __future__ import annotations

from typing import Any

import pytest
from toy_adapter import ToyAdapter, ToyRequest

from kc_core import Config
from kc_core.engine import Engine, EngineSettings, Requirement
from kc_core.errors import ConfigError
from kc_core.plugins import Plugins

# Nothing listens on the discard port: a request that needed Keycloak would get a 503.
NO_KEYCLOAK = "http://127.0.0.1:9"
API = Requirement(api=True)
PREFLIGHT = {"Origin": "http://spa.test", "Access-Control-Request-Method": "GET"}


def make_engine(**settings: Any) -> Engine:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    config = Config(server_url=NO_KEYCLOAK, realm="shop", client_id="api", retries=0)
    return Engine(config, plugins=plugins, settings=EngineSettings(**settings))


def status(engine: Engine, method: str, path: str, **headers: str) -> int | None:
    """The refusal's status, or ``None`` when the request may proceed."""
    request = ToyRequest(url=f"http://app.test{path}", method=method, headers=headers)
    guard = engine.protect(request, API)
    return None if guard.response is None else int(guard.response.status)


def test_a_method_and_prefix_rule_lets_only_that_method_through() -> None:
    engine = make_engine(exempt_routes=("GET /public/",))
    assert status(engine, "GET", "/public/price-list") is None
    assert status(engine, "POST", "/public/price-list") == 401
    assert status(engine, "GET", "/publicity") == 401


def test_a_rule_for_any_method_and_an_exact_path() -> None:
    engine = make_engine(exempt_routes=("* /health",))
    assert status(engine, "GET", "/health") is None
    assert status(engine, "DELETE", "/health") is None
    assert status(engine, "GET", "/health/deep") == 401


def test_rules_read_from_text_settings_are_separated_by_commas() -> None:
    settings = EngineSettings.from_mapping({"KEYCLOAK_EXEMPT_ROUTES": "get /docs/, * /health"})
    assert settings.exempt_routes == ("GET /docs/", "* /health")


@pytest.mark.parametrize("rule", ["/health", "GET health", "G-T /x", ""])
def test_a_malformed_rule_is_refused(rule: str) -> None:
    with pytest.raises(ConfigError, match="exempt_routes"):
        EngineSettings(exempt_routes=(rule,))


def test_a_cors_preflight_passes_untouched_by_default() -> None:
    engine = make_engine()
    assert status(engine, "OPTIONS", "/api/orders", **PREFLIGHT) is None
    request = ToyRequest(url="http://app.test/api/orders", method="OPTIONS", headers=PREFLIGHT)
    guard = engine.authenticate(request)
    assert guard.response is None
    assert guard.identity is None
    assert request.session == {}, "no session is read into or written for a preflight"


def test_an_options_request_that_is_no_preflight_is_protected() -> None:
    engine = make_engine()
    assert status(engine, "OPTIONS", "/api/orders", Origin="http://spa.test") == 401


def test_a_preflight_with_credentials_is_judged_by_them() -> None:
    engine = make_engine()
    assert status(engine, "OPTIONS", "/api/orders", Authorization="Basic YTpi", **PREFLIGHT) == 401


def test_preflights_are_protected_when_the_setting_is_off() -> None:
    engine = make_engine(pass_cors_preflight=False)
    assert status(engine, "OPTIONS", "/api/orders", **PREFLIGHT) == 401
