"""Fixtures for the demo's own tests: kc's user test kit plays Keycloak (no server needed).

``pytest examples/bottle_adapter`` runs them; any WSGI app is driven by werkzeug's test
client, and the kit's plugin provides ``kc_test``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from kc_bottle.demo import make_app
from werkzeug.test import Client

from kc_core import Config
from kc_core.engine import Engine

pytest_plugins = ["kc_core.testing.users_plugin"]

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
def client() -> Client:
    return Client(make_app(Engine(Config(**SETTINGS))))
