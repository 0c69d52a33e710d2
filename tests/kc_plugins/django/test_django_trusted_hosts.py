"""Django's ALLOWED_HOSTS and KEYCLOAK_PUBLIC_URL decide which URLs kc sends to Keycloak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from kc_core.testing.server import KeycloakRealm

OFFLINE = {
    "SERVER_URL": "http://127.0.0.1:9",
    "REALM": "kc-test",
    "CLIENT_ID": "kc-web",
    "CLIENT_SECRET": "kc-web-secret",
    "CONNECT_TIMEOUT": 0.5,
    "RETRIES": 0,
}


def test_allowed_hosts_refuse_a_poisoned_host_with_djangos_400(
    use_settings: Callable[..., None],
) -> None:
    use_settings(KEYCLOAK=OFFLINE, ALLOWED_HOSTS=["shop.example"])
    client = Client()
    assert client.get("/kc/login", HTTP_HOST="evil.example").status_code == 400
    assert client.post("/kc/logout", HTTP_HOST="evil.example").status_code == 400
    # The allowed host passes the check and reaches the (unreachable) Keycloak: 503.
    assert client.get("/kc/login", HTTP_HOST="shop.example").status_code == 503


def test_with_use_x_forwarded_host_the_forwarded_host_is_checked(
    use_settings: Callable[..., None],
) -> None:
    use_settings(KEYCLOAK=OFFLINE, ALLOWED_HOSTS=["shop.example"], USE_X_FORWARDED_HOST=True)
    poisoned = Client().get(
        "/kc/login", HTTP_HOST="shop.example", HTTP_X_FORWARDED_HOST="evil.example"
    )
    assert poisoned.status_code == 400


@pytest.mark.integration
def test_public_url_pins_the_login_redirect_whatever_the_host(
    keycloak: KeycloakRealm, use_settings: Callable[..., None], django_keycloak: dict[str, Any]
) -> None:
    use_settings(
        KEYCLOAK={**django_keycloak, "PUBLIC_URL": "https://shop.example"},
        ALLOWED_HOSTS=["evil.example"],  # even a host Django lets through changes nothing
    )
    start = Client().get("/kc/login", HTTP_HOST="evil.example")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["redirect_uri"] == ["https://shop.example/kc/callback"]


@pytest.fixture
def django_keycloak(keycloak: KeycloakRealm) -> dict[str, Any]:
    return {
        "SERVER_URL": keycloak.base_url,
        "REALM": keycloak.realm,
        "CLIENT_ID": "kc-web",
        "CLIENT_SECRET": "kc-web-secret",
    }
