"""Starlette's TrustedHostMiddleware and KEYCLOAK_PUBLIC_URL decide the URLs kc builds."""

from __future__ import annotations

import pytest
from kc_starlette import KeycloakMiddleware, SealedSessionMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.testclient import TestClient

from kc_core import Config
from kc_core.engine import EngineSettings
from kc_core.testing.server import KeycloakRealm

SECRET = "trusted-hosts-test-secret-0123"


def _app(config: Config, settings: EngineSettings | None = None) -> Starlette:
    return Starlette(
        middleware=[
            # Outermost: a refused Host never reaches the session or kc.
            Middleware(TrustedHostMiddleware, allowed_hosts=["shop.example"]),
            Middleware(SealedSessionMiddleware, secret_key=SECRET),
            Middleware(KeycloakMiddleware, config=config, settings=settings),
        ]
    )


def test_trusted_host_middleware_refuses_a_poisoned_host_with_a_400(
    offline_config: Config,
) -> None:
    client = TestClient(_app(offline_config), base_url="http://shop.example")
    assert client.get("/kc/login", headers={"Host": "evil.example"}).status_code == 400
    assert client.post("/kc/logout", headers={"Host": "evil.example"}).status_code == 400
    # The trusted host passes the check and reaches the (unreachable) Keycloak: 503.
    assert client.get("/kc/login").status_code == 503


@pytest.mark.integration
def test_public_url_pins_the_login_redirect_whatever_the_host(keycloak: KeycloakRealm) -> None:
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-web",
        client_secret="kc-web-secret",
    )
    app = Starlette(
        middleware=[
            Middleware(SealedSessionMiddleware, secret_key=SECRET),
            Middleware(
                KeycloakMiddleware,
                config=config,
                settings=EngineSettings(public_url="https://shop.example"),
            ),
        ]
    )
    start = TestClient(app, base_url="http://evil.example").get(
        "/kc/login", headers={"X-Forwarded-Host": "evil.example"}, follow_redirects=False
    )
    assert start.status_code == 302
    assert "redirect_uri=https%3A%2F%2Fshop.example%2Fkc%2Fcallback" in start.headers["Location"]
