"""Suite-wide pytest setup: the Keycloak fixtures and the ``integration`` marker.

The fixtures come from :mod:`kc_core.testing.plugin`, normally registered by the ``pytest11``
entry point of the installed kc-core; registered here too when kc-core is not installed.
Every test under ``tests/integration/``, and every test using a Keycloak fixture, is marked
``integration`` (``-m "not integration"``
runs the fast unit tests only).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

_INTEGRATION_DIR = Path(__file__).parent / "integration"
_SERVER_FIXTURES = frozenset({"keycloak", "keycloak_server", "keycloak_admin", "form_login"})


def pytest_configure(config: pytest.Config) -> None:
    manager = config.pluginmanager
    plugin = "kc_core.testing.plugin"
    if not manager.has_plugin("kc_core") and not manager.has_plugin(plugin):
        manager.register(importlib.import_module(plugin), plugin)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        uses_server = not _SERVER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        if uses_server or _INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)
