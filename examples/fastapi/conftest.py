"""Fixtures for the example's own tests: kc's user test kit plays Keycloak (no server needed).

``pytest examples/fastapi`` runs them; the kit's plugin provides ``kc_test``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from starlette.testclient import TestClient

# The app reads its settings when imported: point it at the kit's issuer first.
os.environ.update(SECRET_KEY="test-only-secret-key-0123456789", KEYCLOAK_URL="http://keycloak.test")
from app import app

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
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client
