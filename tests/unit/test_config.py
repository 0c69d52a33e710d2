"""Config from keywords, environment variables and Keycloak's ``keycloak.json``; precedence,
immutability and every ConfigError."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kc_core import Config, ConfigError
from kc_core.config import DEFAULT_ALGORITHMS

SERVER = "https://sso.example.test"
REQUIRED: dict[str, Any] = {"server_url": SERVER, "realm": "shop", "client_id": "orders-web"}

WriteSettings = Callable[..., Path]


@pytest.fixture
def write_settings(tmp_path: Path) -> WriteSettings:
    """Write a ``keycloak.json`` (or any name) into a temporary directory."""

    def write(data: Any, name: str = "keycloak.json") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a directory holding no ``keycloak.json``."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


ADAPTER_FILE = {
    "realm": "shop",
    "auth-server-url": "https://sso.example.test/auth/",
    "resource": "orders-api",
    "credentials": {"secret": "s3cret"},
    "public-client": False,
    "bearer-only": True,
    "ssl-required": "EXTERNAL",
    "verify-token-audience": True,
    "confidential-port": 8443,
    "policy-enforcer": {"enforcement-mode": "ENFORCING", "paths": [{"path": "/orders/*"}]},
}


# -- sources ------------------------------------------------------------------------------


def test_keywords_build_a_normalised_config() -> None:
    config = Config(
        server_url=SERVER + "/",
        realm="shop",
        client_id="orders-web",
        client_secret="s3cret",
        scopes="openid profile,email",  # type: ignore[arg-type]
        algorithms=["RS256", "ES256"],  # type: ignore[arg-type]
    )

    assert config.server_url == SERVER
    assert config.realm_url == f"{SERVER}/realms/shop"
    assert config.scopes == ("openid", "profile", "email")
    assert config.algorithms == ("RS256", "ES256")
    assert config.client_auth_method == "client_secret_basic"
    assert config.expected_audience == "orders-web"


def test_defaults_accept_only_asymmetric_algorithms() -> None:
    config = Config(**REQUIRED)

    assert config.algorithms == DEFAULT_ALGORITHMS
    assert not any(alg.startswith("HS") or alg.lower() == "none" for alg in config.algorithms)


def test_expected_audience_follows_audience_and_switch() -> None:
    assert Config(**REQUIRED, audience="orders-api").expected_audience == "orders-api"
    assert Config(**REQUIRED, verify_token_audience=False).expected_audience is None


def test_public_client_authenticates_with_none() -> None:
    assert Config(**REQUIRED, public_client=True).client_auth_method == "none"


def test_secret_is_not_shown_in_repr_of_private_key() -> None:
    config = Config(**REQUIRED, client_auth_method="private_key_jwt", private_key="PEM-SECRET")

    assert "PEM-SECRET" not in repr(config)


def test_from_env_parses_each_type() -> None:
    config = Config.from_env(
        environ={
            "KEYCLOAK_SERVER_URL": SERVER,
            "KEYCLOAK_REALM": "shop",
            "KEYCLOAK_CLIENT_ID": "orders-spa",
            "KEYCLOAK_PUBLIC_CLIENT": "yes",
            "KEYCLOAK_SCOPES": "openid, profile",
            "KEYCLOAK_LEEWAY": "2.5",
            "KEYCLOAK_RETRIES": "1",
            "KEYCLOAK_CONFIDENTIAL_PORT": "",
            "KEYCLOAK_VERIFY_TLS": "false",
            "KEYCLOAK_POLICY_ENFORCER": '{"enforcement-mode": "PERMISSIVE"}',
            "UNRELATED": "ignored",
        }
    )

    assert (config.server_url, config.realm, config.client_id) == (SERVER, "shop", "orders-spa")
    assert config.public_client is True
    assert config.client_auth_method == "none"
    assert config.scopes == ("openid", "profile")
    assert config.leeway == 2.5
    assert config.retries == 1
    assert config.confidential_port is None
    assert config.verify_tls is False
    assert config.policy_enforcer == {"enforcement-mode": "PERMISSIVE"}


def test_from_env_overrides_win() -> None:
    environ = {"KEYCLOAK_SERVER_URL": SERVER, "KEYCLOAK_REALM": "shop", "KEYCLOAK_CLIENT_ID": "a"}

    assert Config.from_env(environ=environ, client_id="b").client_id == "b"


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("KEYCLOAK_PUBLIC_CLIENT", "maybe", "public_client"),
        ("KEYCLOAK_LEEWAY", "ten", "leeway"),
        ("KEYCLOAK_CONFIDENTIAL_PORT", "https", "confidential_port"),
        ("KEYCLOAK_POLICY_ENFORCER", "{not json", "policy_enforcer"),
    ],
)
def test_from_env_rejects_unparsable_value_naming_the_variable(
    variable: str, value: str, key: str
) -> None:
    environ = {"KEYCLOAK_SERVER_URL": SERVER, "KEYCLOAK_REALM": "shop", "KEYCLOAK_CLIENT_ID": "a"}

    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ={**environ, variable: value})

    assert caught.value.key == key
    assert caught.value.looked_in == (variable,)


def test_from_file_reads_keycloak_adapter_keys(write_settings: WriteSettings) -> None:
    config = Config.from_file(write_settings(ADAPTER_FILE))

    assert config.server_url == "https://sso.example.test/auth"
    assert config.realm_url == "https://sso.example.test/auth/realms/shop"
    assert config.client_id == "orders-api"
    assert config.client_secret == "s3cret"
    assert config.public_client is False
    assert config.bearer_only is True
    assert config.ssl_required == "external"
    assert config.verify_token_audience is True
    assert config.confidential_port == 8443
    assert config.policy_enforcer is not None
    assert config.policy_enforcer["enforcement-mode"] == "ENFORCING"


def test_from_file_reads_public_client_and_transport_settings(
    write_settings: WriteSettings,
) -> None:
    path = write_settings(
        {
            "realm": "shop",
            "auth-server-url": SERVER,
            "resource": "orders-spa",
            "public-client": True,
            "ssl-required": "none",
            "disable-trust-manager": True,
            "connection-timeout": 1500,
            "socket-timeout": 20000,
        }
    )

    config = Config.from_file(path)

    assert config.public_client is True
    assert config.client_auth_method == "none"
    assert config.ssl_required == "none"
    assert config.verify_tls is False
    assert (config.connect_timeout, config.read_timeout) == (1.5, 20.0)


def test_policy_enforcer_from_file_is_read_only(write_settings: WriteSettings) -> None:
    config = Config.from_file(write_settings(ADAPTER_FILE))

    assert config.policy_enforcer is not None
    with pytest.raises(TypeError):
        config.policy_enforcer["enforcement-mode"] = "DISABLED"  # type: ignore[index]


def test_jwt_credentials_in_file_select_private_key_jwt(write_settings: WriteSettings) -> None:
    data = {**ADAPTER_FILE, "credentials": {"jwt": {"client-keystore-file": "x.jks"}}}

    config = Config.from_file(write_settings(data), private_key="PEM")

    assert config.client_auth_method == "private_key_jwt"


# -- precedence ---------------------------------------------------------------------------

FILE_VALUES = {
    "realm": "file-realm",
    "auth-server-url": "https://file.example.test",
    "resource": "file-client",
    "confidential-port": 1,
}
ENV_VALUES = {"KEYCLOAK_REALM": "env-realm", "KEYCLOAK_CLIENT_ID": "env-client"}


def test_load_prefers_keywords_then_environment_then_file(write_settings: WriteSettings) -> None:
    path = write_settings(FILE_VALUES)

    config = Config.load(environ=ENV_VALUES, settings_file=path, client_id="kw-client")

    assert config.client_id == "kw-client"
    assert config.realm == "env-realm"
    assert config.server_url == "https://file.example.test"
    assert config.confidential_port == 1


def test_load_finds_file_named_by_keycloak_settings(write_settings: WriteSettings) -> None:
    path = write_settings(FILE_VALUES, name="elsewhere.json")

    config = Config.load(environ={**ENV_VALUES, "KEYCLOAK_SETTINGS": str(path)})

    assert (config.server_url, config.realm) == ("https://file.example.test", "env-realm")


def test_load_reads_keycloak_json_in_working_directory(
    empty_cwd: Path, write_settings: WriteSettings
) -> None:
    (empty_cwd / "keycloak.json").write_text(json.dumps(FILE_VALUES), encoding="utf-8")

    config = Config.load(environ={})

    assert (config.realm, config.client_id) == ("file-realm", "file-client")


def test_settings_file_argument_beats_keycloak_settings(write_settings: WriteSettings) -> None:
    chosen = write_settings(FILE_VALUES, name="chosen.json")
    ignored = write_settings({**FILE_VALUES, "realm": "ignored"}, name="ignored.json")

    config = Config.load(environ={"KEYCLOAK_SETTINGS": str(ignored)}, settings_file=chosen)

    assert config.realm == "file-realm"


# -- from_issuer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "server_url"),
    [
        ("https://sso.example.test/realms/shop", "https://sso.example.test"),
        ("https://sso.example.test/realms/shop/", "https://sso.example.test"),
        ("https://sso.example.test/auth/realms/shop", "https://sso.example.test/auth"),
    ],
)
def test_from_issuer_splits_server_and_realm(issuer: str, server_url: str) -> None:
    config = Config.from_issuer(issuer, "orders-web")

    assert (config.server_url, config.realm, config.client_id) == (
        server_url,
        "shop",
        "orders-web",
    )
    assert config.realm_url == issuer.rstrip("/")


@pytest.mark.parametrize(
    "issuer",
    ["https://sso.example.test", "https://sso.example.test/realms/", "https://h/realms/a/b"],
)
def test_from_issuer_rejects_url_without_realm(issuer: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_issuer(issuer, "orders-web")

    assert caught.value.key == "issuer"


# -- immutability -------------------------------------------------------------------------


def test_config_is_immutable() -> None:
    config = Config(**REQUIRED)

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.realm = "other"  # type: ignore[misc]
    assert config.realm == "shop"


def test_replace_returns_a_checked_copy() -> None:
    config = Config(**REQUIRED)

    assert config.replace(realm="other").realm == "other"
    assert config.realm == "shop"
    with pytest.raises(ConfigError):
        config.replace(algorithms=("HS256",))


# -- errors -------------------------------------------------------------------------------


@pytest.mark.usefixtures("empty_cwd")
def test_missing_setting_names_key_and_every_place_looked_in() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.load(environ={"KEYCLOAK_REALM": "shop", "KEYCLOAK_CLIENT_ID": "a"})

    assert caught.value.key == "server_url"
    assert caught.value.looked_in == (
        "keyword arguments",
        "environment (KEYCLOAK_*)",
        "./keycloak.json (absent)",
    )
    assert "keycloak.json" in str(caught.value)


def test_missing_setting_with_settings_file_names_the_file(write_settings: WriteSettings) -> None:
    path = write_settings({"realm": "shop", "auth-server-url": SERVER})

    with pytest.raises(ConfigError) as caught:
        Config.load(environ={}, settings_file=path)

    assert caught.value.key == "client_id"
    assert caught.value.looked_in == ("keyword arguments", "environment (KEYCLOAK_*)", str(path))


def test_from_env_missing_setting_names_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ={"KEYCLOAK_SERVER_URL": SERVER, "KEYCLOAK_CLIENT_ID": "a"})

    assert caught.value.key == "realm"
    assert caught.value.looked_in == ("environment (KEYCLOAK_REALM)",)


def test_from_file_missing_setting_names_the_file(write_settings: WriteSettings) -> None:
    path = write_settings({"realm": "shop", "resource": "a"})

    with pytest.raises(ConfigError) as caught:
        Config.from_file(path)

    assert caught.value.key == "server_url"
    assert caught.value.looked_in == (str(path),)


@pytest.mark.parametrize(
    ("content", "match"),
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")],
)
def test_unreadable_settings_file_is_a_config_error(
    write_settings: WriteSettings, content: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        Config.from_file(write_settings(content))

    assert caught.value.key == "KEYCLOAK_SETTINGS"


def test_missing_settings_file_named_by_environment_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"

    with pytest.raises(ConfigError, match="does not exist") as caught:
        Config.load(environ={"KEYCLOAK_SETTINGS": str(missing)})

    assert caught.value.key == "KEYCLOAK_SETTINGS"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        pytest.param({"realm": ""}, "realm", id="empty-realm"),
        pytest.param({"server_url": "sso.example.test"}, "server_url", id="no-scheme"),
        pytest.param({"server_url": "ftp://sso.example.test"}, "server_url", id="ftp-scheme"),
        pytest.param(
            {"public_client": True, "client_secret": "s3cret"}, "client_secret", id="public-secret"
        ),
        pytest.param(
            {"public_client": True, "bearer_only": True}, "public_client", id="public-bearer-only"
        ),
        pytest.param(
            {"public_client": True, "client_auth_method": "client_secret_post"},
            "client_auth_method",
            id="public-with-secret-auth",
        ),
        pytest.param(
            {"client_auth_method": "client_secret_jwt"}, "client_auth_method", id="unknown-auth"
        ),
        pytest.param(
            {"client_auth_method": "private_key_jwt"}, "private_key", id="private-key-jwt-no-key"
        ),
        pytest.param(
            {"server_url": "http://sso.example.test", "ssl_required": "all"},
            "ssl_required",
            id="ssl-all-with-http",
        ),
        pytest.param({"ssl_required": "sometimes"}, "ssl_required", id="ssl-unknown"),
        pytest.param({"algorithms": ("RS256", "HS256")}, "algorithms", id="algorithms-hs256"),
        pytest.param({"algorithms": ("none",)}, "algorithms", id="algorithms-none"),
        pytest.param({"algorithms": ()}, "algorithms", id="algorithms-empty"),
        pytest.param({"connect_timeout": 0}, "connect_timeout", id="zero-connect-timeout"),
        pytest.param({"read_timeout": -1}, "read_timeout", id="negative-read-timeout"),
    ],
)
def test_contradictory_or_invalid_settings_raise_config_error(
    changes: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Config(**{**REQUIRED, **changes})

    assert caught.value.key == key


def test_contradiction_from_combined_sources_is_reported(write_settings: WriteSettings) -> None:
    path = write_settings({**FILE_VALUES, "credentials": {"secret": "s3cret"}})

    with pytest.raises(ConfigError) as caught:
        Config.load(environ={"KEYCLOAK_PUBLIC_CLIENT": "true"}, settings_file=path)

    assert caught.value.key == "client_secret"


def test_ssl_required_all_is_fine_with_https() -> None:
    assert Config(**REQUIRED, ssl_required="all").ssl_required == "all"


def test_authorized_parties_from_every_source(write_settings: WriteSettings) -> None:
    base = {"server_url": "https://sso.example.test", "realm": "shop", "client_id": "api"}
    env = {f"KEYCLOAK_{k.upper()}": v for k, v in base.items()}
    from_env = Config.from_env({**env, "KEYCLOAK_AUTHORIZED_PARTIES": "spa, cli"})
    from_mapping = Config.from_mapping({**env, "KEYCLOAK_AUTHORIZED_PARTIES": ["spa", "cli"]})
    from_pyramid = Config.from_mapping(
        {"keycloak.server_url": base["server_url"], "keycloak.realm": "shop",
         "keycloak.client_id": "api", "keycloak.authorized_parties": "spa cli"},
        key_prefix="keycloak.", upper=False,
    )  # fmt: skip
    path = write_settings(
        {"realm": "shop", "auth-server-url": base["server_url"], "resource": "api",
         "authorized-parties": ["spa", "cli"]}
    )  # fmt: skip
    from_file = Config.from_file(path)

    for config in (
        from_env,
        from_mapping,
        from_pyramid,
        from_file,
        Config(**base, authorized_parties="spa,cli"),
    ):
        assert config.authorized_parties == ("spa", "cli")


def test_verify_token_audience_false_from_keycloak_json(write_settings: WriteSettings) -> None:
    path = write_settings(
        {"realm": "shop", "auth-server-url": "https://sso.example.test", "resource": "api",
         "verify-token-audience": False}
    )  # fmt: skip

    config = Config.from_file(path)

    assert config.verify_token_audience is False
    assert config.expected_audience is None
