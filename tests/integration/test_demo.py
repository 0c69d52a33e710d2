"""The demo's realm and app work together against the real Keycloak (what ``./dev demo`` runs)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kc_core import Client, Config
from kc_core.testing import KeycloakAdmin, KeycloakRealm, login_with_form
from kc_core.testing.admin import KeycloakAdminError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_REALM = json.loads((EXAMPLES / "demo-realm.json").read_text())


@pytest.fixture
def demo_realm(keycloak_admin: KeycloakAdmin) -> Iterator[str]:
    with contextlib.suppress(KeycloakAdminError):  # left over by an interrupted run
        keycloak_admin.delete(f"/admin/realms/{DEMO_REALM['realm']}")
    keycloak_admin.post("/admin/realms", json=DEMO_REALM)
    yield DEMO_REALM["realm"]
    keycloak_admin.delete(f"/admin/realms/{DEMO_REALM['realm']}")


def test_demo_app_logs_alice_in_and_serves_her_api(
    keycloak: KeycloakRealm, demo_realm: str
) -> None:
    sys.path.insert(0, str(EXAMPLES / "flask"))
    from app import create_app

    app = create_app(
        {
            "KEYCLOAK_SERVER_URL": keycloak.base_url,
            "KEYCLOAK_REALM": demo_realm,
            "KEYCLOAK_CLIENT_ID": "kc-demo",
            "KEYCLOAK_CLIENT_SECRET": "kc-demo-secret",
            "SECRET_KEY": "demo-test-secret-0123456789",
        }
    )
    browser = app.test_client()
    to_keycloak = browser.get("/kc/login?next=/profile")
    assert to_keycloak.status_code == 302
    login = login_with_form(
        to_keycloak.headers["Location"],
        "alice",
        "alice-password",
        stop_at="http://localhost/kc/callback",
    )
    # The whole answer: Keycloak's iss comes with code and state (RFC 9207).
    landed = browser.get(f"/kc/callback?{urlsplit(login.url).query}")
    assert landed.status_code == 302
    assert landed.headers["Location"].endswith("/profile")
    assert "Alice" in browser.get("/profile").get_data(as_text=True)

    bob = Client(
        Config(
            server_url=keycloak.base_url,
            realm=demo_realm,
            client_id="kc-demo",
            client_secret="kc-demo-secret",
        )
    ).password_grant("bob", "bob-password")
    api = app.test_client().get(
        "/api/reports", headers={"Authorization": f"Bearer {bob.access_token}"}
    )
    assert api.status_code == 200
    assert api.get_json()["reader"] == "bob"
