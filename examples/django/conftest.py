"""Fixtures for the example's own tests: kc's user test kit plays Keycloak (no server needed).

``pytest examples/django`` runs them; the kit's plugin provides ``kc_test``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import django
import pytest
from django.test import Client

# Django reads its settings once: point them at the kit's issuer before it starts.
os.environ.update(
    DJANGO_SETTINGS_MODULE="kc_example.settings",
    DJANGO_SECRET_KEY="test-only-secret-key-0123456789",
    DJANGO_ALLOWED_HOSTS="testserver",
    DJANGO_SESSION_DIR=tempfile.mkdtemp(prefix="kc-example-test-sessions-"),
    KEYCLOAK_URL="http://keycloak.test",
)
django.setup()

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
def client() -> Client:
    return Client()
