"""The public URL setting, Config.redirect_uri against it, cross-site signals, sealed values."""

from __future__ import annotations

import pytest

from kc_core import Config, ConfigError
from kc_core.engine import Engine, EngineSettings
from kc_core.engine.logout import _cross_site
from kc_core.sealed import CookieSealer

CONFIG = Config(server_url="http://127.0.0.1:9", realm="r", client_id="c", client_secret="s")


def test_public_url_is_kept_as_an_origin() -> None:
    assert EngineSettings(public_url="https://Shop.Example/").public_url == "https://shop.example"
    values = {"KEYCLOAK_PUBLIC_URL": "http://127.0.0.1:8000"}
    assert EngineSettings.from_mapping(values).public_url == "http://127.0.0.1:8000"
    for wrong in ("shop.example", "ftp://shop.example", "https://shop.example/app", "https://"):
        with pytest.raises(ConfigError):
            EngineSettings(public_url=wrong)


def test_redirect_uri_is_honoured_or_refused_when_it_contradicts_the_settings() -> None:
    engine = Engine(CONFIG.replace(redirect_uri="https://shop.example/kc/callback"))
    assert engine._tenants["default"].public_origin == "https://shop.example"
    with pytest.raises(ConfigError, match="callback"):
        Engine(CONFIG.replace(redirect_uri="https://shop.example/oidc/cb"))
    with pytest.raises(ConfigError, match="public_url"):
        Engine(
            CONFIG.replace(redirect_uri="https://shop.example/kc/callback"),
            settings=EngineSettings(public_url="https://other.example"),
        )


@pytest.mark.parametrize(
    ("origin", "fetch_site", "cross"),
    [
        (None, None, False),
        ("https://shop.example", None, False),
        ("https://shop.example", "same-origin", False),
        (None, "none", False),
        ("null", None, True),
        ("https://evil.example", None, True),
        (None, "cross-site", True),
        (None, "same-site", True),
        ("https://shop.example", "cross-site", True),
    ],
)
def test_cross_site_signals(origin: str | None, fetch_site: str | None, cross: bool) -> None:
    assert _cross_site(origin, fetch_site, "https://shop.example") is cross


def test_sealed_values_open_only_with_their_secret_purpose_and_age() -> None:
    sealer = CookieSealer("a-secret-of-16-bytes", purpose="session")
    text = sealer.seal(b'{"code_verifier": "v"}')
    assert b"code_verifier" not in text.encode()
    assert sealer.unseal(text, max_age=60) == b'{"code_verifier": "v"}'
    with pytest.raises(ValueError, match="changed or sealed with another key"):
        CookieSealer("a-secret-of-16-bytes", purpose="other").unseal(text)
    with pytest.raises(ValueError, match="changed or sealed with another key"):
        CookieSealer("another-secret-16-b", purpose="session").unseal(text)
    with pytest.raises(ValueError, match="changed or sealed with another key"):
        sealer.unseal(text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1])
    with pytest.raises(ValueError, match="expired"):
        sealer.unseal(text, max_age=-1)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CookieSealer("short", purpose="session")
