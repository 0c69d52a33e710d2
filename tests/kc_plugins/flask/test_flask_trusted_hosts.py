"""Flask's TRUSTED_HOSTS and KEYCLOAK_PUBLIC_URL decide which URLs kc sends to Keycloak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from kc_flask import AuthenticationMiddleware, Keycloak
from werkzeug.middleware.proxy_fix import ProxyFix

POISONED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


def _app(config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    Keycloak(app)
    return app


def test_trusted_hosts_refuse_a_poisoned_host_with_flasks_400(
    offline_config: dict[str, Any],
) -> None:
    client = _app({**offline_config, "TRUSTED_HOSTS": ["shop.example"]}).test_client()
    assert client.get("/kc/login", headers={"Host": "evil.example"}).status_code == 400
    assert client.post("/kc/logout", headers={"Host": "evil.example"}).status_code == 400
    # The trusted host passes the check and reaches the (unreachable) Keycloak: 503.
    assert client.get("/kc/login", headers={"Host": "shop.example"}).status_code == 503


def test_behind_proxyfix_a_forwarded_host_is_checked_too(offline_config: dict[str, Any]) -> None:
    app = _app({**offline_config, "TRUSTED_HOSTS": ["shop.example"]})
    app.wsgi_app = ProxyFix(app.wsgi_app, x_host=1, x_proto=1)  # type: ignore[method-assign]
    client = app.test_client()
    poisoned = {"Host": "shop.example", "X-Forwarded-Host": "evil.example"}
    assert client.get("/kc/login", headers=poisoned).status_code == 400


def test_the_seed_middleware_honours_trusted_hosts_with_a_400(
    offline_config: dict[str, Any],
) -> None:
    app = Flask(__name__)
    app.config.update({**offline_config, "TRUSTED_HOSTS": ["shop.example"]})
    app.wsgi_app = AuthenticationMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, app.config, app.session_interface
    )
    client = app.test_client()
    assert client.get("/private", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/private", headers={"Host": "shop.example"}).status_code == 503


@pytest.mark.integration
def test_public_url_pins_the_login_redirect_whatever_the_host(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(KEYCLOAK_PUBLIC_URL="https://shop.example/")
    start = app.test_client().get("/kc/login", headers=POISONED)
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://shop.example/kc/callback"]
