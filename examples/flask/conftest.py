"""Fixtures for the example's own tests: kc's user test kit plays Keycloak (no server needed).

``pytest examples/flask`` runs them; the kit's plugin provides ``kc_test``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from app import create_app
from flask.testing import FlaskClient

pytest_plugins = ["kc_core.testing.users_plugin"]

# What the app is configured with; the kit's issuer answers for this realm and client.
SETTINGS = {
    "server_url": "http://keycloak.test",
    "realm": "kc-test",
    "client_id": "kc-web",
    "client_secret": "kc-web-secret",
}


@pytest.fixture
def kc_test_settings() -> Mapping[str, Any]:
    return SETTINGS


@pytest.fixture
def client() -> FlaskClient:
    app = create_app(
        {
            "SECRET_KEY": "test-only-secret-key-0123456789",
            "KEYCLOAK_SERVER_URL": SETTINGS["server_url"],
        }
    )
    return app.test_client()
