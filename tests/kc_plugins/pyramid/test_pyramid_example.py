"""The example Pyramid app (``examples/pyramid/app.py``) against the real Keycloak."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pyramid" / "app.py"
# The example refuses to start without a session secret: the tests pass one.
SECRET = {"session.secret": "example-test-secret-0123456789"}


def example_create_app() -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location("kc_pyramid_example_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Pyramid's Configurator looks its caller's package up
    spec.loader.exec_module(module)
    create_app: Callable[..., Any] = module.create_app
    return create_app


def test_the_example_logs_in_shows_admin_pages_and_serves_its_api(
    keycloak: KeycloakRealm, serve: Callable[[Any], str]
) -> None:
    url = serve(example_create_app()({"keycloak.server_url": keycloak.base_url, **SECRET}))
    with BrowserSession() as browser:
        assert "Welcome, visitor" in browser.get(f"{url}/", timeout=15).text
        page = login_with_form(f"{url}/admin", "alice", "alice-password", session=browser)
        assert page.url == f"{url}/admin"
        assert "Only realm admins" in page.response.text
        home = browser.get(f"{url}/", timeout=15).text
        assert 'href="/admin"' in home
        assert "Log out" in home
    assert requests.get(f"{url}/api/reports", timeout=15).status_code == 401
