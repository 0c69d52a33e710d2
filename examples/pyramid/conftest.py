"""Fixtures for the example's own tests: kc's user test kit plays Keycloak (no server needed).

``pytest examples/pyramid`` runs them with WebTest; the kit's plugin provides ``kc_test``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from app import create_app
from webtest import TestApp

pytest_plugins = ["kc_core.testing.users_plugin"]


@pytest.fixture
def kc_test_settings() -> Mapping[str, Any]:
    return {
        "server_url": "http://keycloak.test",
        "realm": "kc-test",
        "client_id": "kc-web",
        "client_secret": "kc-web-secret",
    }


@pytest.fixture
def client() -> TestApp:
    app = create_app(
        {
            "session.secret": "test-only-secret-key-0123456789",
            "keycloak.server_url": "http://keycloak.test",
            "keycloak.trusted_hosts": "localhost:80",
        }
    )
    return TestApp(app)
