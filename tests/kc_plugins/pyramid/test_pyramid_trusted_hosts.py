"""``keycloak.trusted_hosts`` and ``keycloak.public_url`` decide the URLs kc builds in Pyramid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import build_app, realm_settings

from kc_core.testing.server import KeycloakRealm

POISONED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


def test_trusted_hosts_refuse_a_poisoned_host_with_pyramids_400(
    offline_settings: dict[str, Any], serve: Callable[[Any], str]
) -> None:
    url = serve(build_app({**offline_settings, "keycloak.trusted_hosts": "shop.example"}))
    login = requests.get(f"{url}/kc/login", headers={"Host": "evil.example"}, timeout=15)
    assert login.status_code == 400
    logout = requests.post(f"{url}/kc/logout", headers={"Host": "evil.example"}, timeout=15)
    assert logout.status_code == 400
    # The trusted host passes the check and reaches the (unreachable) Keycloak: 503.
    trusted = requests.get(f"{url}/kc/login", headers={"Host": "shop.example"}, timeout=15)
    assert trusted.status_code == 503


@pytest.mark.integration
def test_public_url_pins_the_login_redirect_whatever_the_host(
    keycloak: KeycloakRealm, serve: Callable[[Any], str]
) -> None:
    settings = realm_settings(keycloak, **{"keycloak.public_url": "https://shop.example"})
    url = serve(build_app(settings))
    start = requests.get(f"{url}/kc/login", headers=POISONED, allow_redirects=False, timeout=15)
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://shop.example/kc/callback"]
