"""docs/cors.md's Django setup, tried by a single-page app on another origin.

django-cors-headers' ``CorsMiddleware`` above kc's middleware, as docs/cors.md shows; the SPA
(tests/spa_support.py: keycloak-js in headless Chromium, served on another loopback port)
logs bob in and must read kc's 200, 403 and 401 answers of a bearer-only API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, JsonResponse
from django.urls import path
from kc_django import bearer_required, identity_of
from spa_support import assert_readable, run_spa

from kc_core import Config
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.conformance import chromium as headless_chromium
from kc_core.testing.server import KeycloakRealm
from kc_core.testing.serving import serve_wsgi

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytest.importorskip("corsheaders", reason="pip install django-cors-headers")
pytestmark = pytest.mark.integration


@bearer_required(roles=["realm:user"])
def user(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"username": identity_of(request).username})


@bearer_required(roles=["realm:admin"])
def admin(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"username": identity_of(request).username})


urlpatterns = [path("api/user", user), path("api/admin", admin)]


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path) as driver:
        yield driver


def test_an_spa_on_another_origin_reads_kcs_answers(
    chromium: WebDriver,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    use_settings: Callable[..., None],
) -> None:
    def make_api(config: Config, spa_origin: str) -> Any:
        use_settings(
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[  # docs/cors.md: CorsMiddleware above everything, kc's included
                "corsheaders.middleware.CorsMiddleware",
                "django.middleware.common.CommonMiddleware",
                "kc_django.middleware.KeycloakMiddleware",
            ],
            CORS_ALLOWED_ORIGINS=[spa_origin],
            CORS_ALLOW_HEADERS=["authorization", "content-type"],
            KEYCLOAK={
                "SERVER_URL": config.server_url,
                "REALM": config.realm,
                "CLIENT_ID": config.client_id,
                "CLIENT_SECRET": config.client_secret,
                "BEARER_ONLY": True,
            },
        )
        return WSGIHandler()

    assert_readable(run_spa(chromium, keycloak, keycloak_admin, make_api, serve_wsgi))
