"""kc's adapter conformance kit, run against the Django test project served over HTTP.

The kit posts logout without a CSRF token, as a non-Django client would: the project runs
here without ``CsrfViewMiddleware``. Logout with Django's CSRF protection on is tested in
``test_django_integration.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

from kc_core.engine import Engine
from kc_core.testing.conformance import AdapterConformance, serve_wsgi

pytestmark = pytest.mark.integration

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "kc_django.middleware.KeycloakMiddleware",
]


class TestDjangoAdapter(AdapterConformance):
    @contextlib.contextmanager
    def serve(self, engine: Engine) -> Iterator[str]:
        with (
            # Secure: the kit's browser still sends it to 127.0.0.1 over http.
            override_settings(
                KEYCLOAK_ENGINE=engine, MIDDLEWARE=MIDDLEWARE, SESSION_COOKIE_SECURE=True
            ),
            serve_wsgi(WSGIHandler()) as url,
        ):
            yield url
