"""One real browser (headless Chromium through Selenium) through the example app and Keycloak."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from kc_core.testing.conformance import chromium as headless_chromium
from kc_core.testing.server import KeycloakRealm

if TYPE_CHECKING:
    from conftest import LiveApp
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.integration

WAIT = 20.0


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path) as driver:
        yield driver


def test_a_real_browser_logs_in_sees_its_name_and_logs_out(
    chromium: WebDriver,
    keycloak: KeycloakRealm,
    example_create_app: Callable[..., Flask],
    serve: Callable[[Any], LiveApp],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    app = serve(example_create_app({"KEYCLOAK_SERVER_URL": keycloak.base_url}))
    wait = WebDriverWait(chromium, WAIT)

    chromium.get(f"{app.url}/profile")
    wait.until(until.url_contains(f"{keycloak.issuer}/protocol/openid-connect/auth"))
    chromium.find_element(By.ID, "username").send_keys("alice")
    chromium.find_element(By.ID, "password").send_keys("alice-password")
    chromium.find_element(By.ID, "kc-login").click()

    wait.until(until.url_to_be(f"{app.url}/profile"))
    name = wait.until(until.visibility_of_element_located((By.ID, "profile-name")))
    assert name.text == "Alice Anderson"

    chromium.find_element(By.ID, "logout").click()
    greeting = wait.until(until.visibility_of_element_located((By.ID, "greeting")))
    assert greeting.text == "Welcome, visitor"
    assert chromium.current_url == f"{app.url}/"

    chromium.get(f"{app.url}/profile")  # logged out of Keycloak too: the login form again
    wait.until(until.visibility_of_element_located((By.ID, "username")))
