"""``Config.internal_url``: read from every source, checked, and used for the realm's address."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kc_core import Config
from kc_core.errors import ConfigError

BASE = {"server_url": "https://sso.example.com", "realm": "shop", "client_id": "web"}


def test_internal_url_gives_the_realm_address_for_server_to_server_calls() -> None:
    config = Config(**BASE, internal_url="http://keycloak:8080/")
    assert config.internal_url == "http://keycloak:8080"
    assert config.internal_realm_url == "http://keycloak:8080/realms/shop"
    assert config.realm_url == "https://sso.example.com/realms/shop"


def test_without_internal_url_the_public_address_serves_both() -> None:
    assert Config(**BASE).internal_realm_url == "https://sso.example.com/realms/shop"


def test_internal_url_is_read_from_the_environment_and_keycloak_json(tmp_path: Path) -> None:
    environ = {f"KEYCLOAK_{k.upper()}": v for k, v in BASE.items()}
    environ["KEYCLOAK_INTERNAL_URL"] = "http://keycloak:8080"
    assert Config.from_env(environ).internal_url == "http://keycloak:8080"
    path = tmp_path / "keycloak.json"
    path.write_text(
        json.dumps(
            {
                "realm": "shop",
                "auth-server-url": "https://sso.example.com",
                "resource": "web",
                "internal-url": "http://kc.internal:8080",
            }
        )
    )
    assert Config.from_file(path).internal_url == "http://kc.internal:8080"


def test_an_internal_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="internal_url must be an http"):
        Config(**BASE, internal_url="keycloak:8080")
