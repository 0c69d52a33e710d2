"""Fixtures for kc-django tests: one Django project, pointed at the real Keycloak per test.

Django is configured once for the test process (``settings.configure``) with the views and
URLconf of ``kc_django_test_project``; each test points the project at Keycloak with
``override_settings(KEYCLOAK=...)`` (the ``project`` fixture), and kc-django rebuilds its
engine from the new settings. Logins go as a browser's would: the app's ``/kc/login``
redirects to Keycloak, Keycloak's real login form is filled in by
:func:`~kc_core.testing.browser.login_with_form`, and the code and state it sends back reach
the app's callback through Django's test ``Client`` (host ``localhost``, a redirect URI
the realm accepts). ``offline_project`` names a closed port instead of Keycloak.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import django
import pytest
import requests
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client
from django.test.utils import override_settings

from kc_core.testing.browser import BrowserSession, FormLoginResult, login_with_form
from kc_core.testing.conformance import serve_wsgi
from kc_core.testing.server import KeycloakRealm

CLIENT_ID = "kc-web"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
KEYCLOAK_MIDDLEWARE = "kc_django.middleware.KeycloakMiddleware"
_DATABASE_DIR = Path(tempfile.mkdtemp(prefix="kc-django-tests-"))
#: Django REST framework is an extra of kc-django (the django-only run goes without it).
HAS_DRF = importlib.util.find_spec("rest_framework") is not None

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="kc-django-test-secret-key-0123456789",
        ALLOWED_HOSTS=["localhost", "127.0.0.1", "testserver"],
        ROOT_URLCONF="kc_django_test_project",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
            *(["rest_framework"] if HAS_DRF else []),
            "kc_django",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        STATIC_URL="/static/",
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "kc_django.drf.KeycloakAuthentication",
                "rest_framework.authentication.SessionAuthentication",
            ],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        },
        MIDDLEWARE=[SESSIONS, CSRF, KEYCLOAK_MIDDLEWARE],
        # Server-side sessions: their id must change at login (session fixation).
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(_DATABASE_DIR / "db.sqlite3"),
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_DATABASE_DIR, ignore_errors=True)


def keycloak_settings(keycloak: KeycloakRealm, **extra: Any) -> dict[str, Any]:
    """``settings.KEYCLOAK`` pointing the project at the test realm as kc-web."""
    return {
        "SERVER_URL": keycloak.base_url,
        "REALM": keycloak.realm,
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": keycloak.client(CLIENT_ID).secret,
        **extra,
    }


@pytest.fixture
def use_settings() -> Iterator[Callable[..., None]]:
    """``use_settings(NAME=value, ...)``: override Django settings until the test ends."""
    active: list[override_settings] = []

    def use(**values: Any) -> None:
        override = override_settings(**values)
        override.enable()
        active.append(override)

    yield use
    for override in reversed(active):
        override.disable()


@pytest.fixture
def project(keycloak: KeycloakRealm, use_settings: Callable[..., None]) -> Callable[..., None]:
    """Point the project at the real Keycloak: ``project(keycloak_extra={...}, DEBUG=True)``.

    ``keycloak_extra`` adds keys to ``settings.KEYCLOAK``; other keywords are Django settings.
    """

    def configure(*, keycloak_extra: dict[str, Any] | None = None, **django_settings: Any) -> None:
        use_settings(
            KEYCLOAK=keycloak_settings(keycloak, **(keycloak_extra or {})), **django_settings
        )

    return configure


@pytest.fixture
def offline_project(use_settings: Callable[..., None], closed_port: int) -> None:
    """The project with no Keycloak reachable: any call to it fails fast."""
    use_settings(
        KEYCLOAK={
            "SERVER_URL": f"http://127.0.0.1:{closed_port}",
            "REALM": "kc-test",
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": "kc-web-secret",
            "CONNECT_TIMEOUT": 0.5,
            "RETRIES": 0,
        }
    )


@pytest.fixture
def client() -> Client:
    """Django's test client, as a browser on ``localhost`` (a redirect URI the realm allows)."""
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def live_url() -> Iterator[str]:
    """The project served over real HTTP (Django's WSGI handler in a thread)."""
    with serve_wsgi(WSGIHandler()) as url:
        yield url


@pytest.fixture
def database(use_settings: Callable[..., None]) -> None:
    """The project's database, migrated (for local users)."""
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


# -- tokens and logins from the real Keycloak ------------------------------------------------


@pytest.fixture
def sign_in(keycloak: KeycloakRealm) -> Iterator[Callable[..., FormLoginResult]]:
    """Fill in Keycloak's login form for the authorization URL the app redirected to.

    Stops at Keycloak's redirect back to the app (the test client takes it from there).
    """
    browsers: list[BrowserSession] = []

    def sign_in(authorization_url: str, user: str = "alice") -> FormLoginResult:
        assert authorization_url.startswith(f"{keycloak.auth_url}?"), authorization_url
        redirect_uri = dict(parse_qsl(urlsplit(authorization_url).query))["redirect_uri"]
        browser = BrowserSession()
        browsers.append(browser)
        password = keycloak.user(user).password
        return login_with_form(
            authorization_url, user, password, session=browser, stop_at=redirect_uri
        )

    yield sign_in
    for browser in browsers:
        browser.close()


@dataclass(frozen=True)
class LoggedIn:
    """A finished login: the callback's answer, and the browser Keycloak knows."""

    callback: Any
    browser: requests.Session


@pytest.fixture
def log_in(sign_in: Callable[..., FormLoginResult]) -> Callable[..., LoggedIn]:
    """Walk the login round trip for ``path`` with the test client and Keycloak; stop at
    the callback's redirect (the page first asked for is not requested yet)."""

    def log_in(client: Client, path: str = "/private", user: str = "alice") -> LoggedIn:
        response = client.get(path)
        assert response.status_code == 302, response.content
        location = response["Location"]
        while location.startswith("/"):  # the app's login routes first (the admin's, kc's)
            response = client.get(location)
            assert response.status_code == 302, response.content
            location = response["Location"]
        result = sign_in(location, user)
        assert result.code, result.params
        back = client.get(urlsplit(result.url).path, dict(result.params))
        assert back.status_code == 302, back.content
        return LoggedIn(back, result.session)

    return log_in
