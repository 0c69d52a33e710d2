"""Settings of the kc-django example project.

``DJANGO_SECRET_KEY`` is required (the project refuses to start without it). Only the hosts
in ``ALLOWED_HOSTS`` are served (others answer 400); behind a proxy, set
``KEYCLOAK_PUBLIC_URL`` (see docs/django.md).

``KEYCLOAK_TOKEN_STORE`` picks where sessions' tokens live: ``memory`` (the default, one
process only: ``runserver``) or a ``redis://host:port/db`` URL, which every worker of
``gunicorn -w 3 kc_example.wsgi`` shares (see docs/token-stores.md). The browser sessions
are files in one directory: all workers of one host share them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "examples/django: set DJANGO_SECRET_KEY (e.g. `python -c 'import secrets; "
        "print(secrets.token_hex(32))'`): it signs the session cookie"
    )
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1 localhost").split()

INSTALLED_APPS = [
    "django.contrib.sessions",
    "kc_django",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "kc_django.middleware.KeycloakMiddleware",
]

ROOT_URLCONF = "kc_example.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "kc_example" / "templates"],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# No database: sessions live in files (server-side, so the session id rotates at login and
# the pending login's PKCE verifier never reaches the browser). Unlike the default LocMem
# cache (300 entries), files are never evicted by other visitors' sessions.
DATABASES: dict[str, dict[str, str]] = {}
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = os.environ.get("DJANGO_SESSION_DIR") or os.path.join(
    tempfile.gettempdir(), f"kc-django-example-sessions-{os.getuid()}"
)
os.makedirs(SESSION_FILE_PATH, mode=0o700, exist_ok=True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Served over https (KEYCLOAK_PUBLIC_URL, behind a TLS-terminating proxy): cookies only there.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = os.environ.get("KEYCLOAK_PUBLIC_URL", "").startswith(
    "https://"
)
USE_TZ = True

KEYCLOAK = {
    "SERVER_URL": os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:18080"),
    "REALM": "kc-test",
    "CLIENT_ID": "kc-web",
    "CLIENT_SECRET": "kc-web-secret",
}
# KEYCLOAK_* environment variables win (KEYCLOAK_REALM, KEYCLOAK_LOGOUT_MODE ...).
# KEYCLOAK_URL names the server above; it is not a kc setting.
globals().update(
    {
        name: value
        for name, value in os.environ.items()
        if name.startswith("KEYCLOAK_") and name != "KEYCLOAK_URL"
    }
)
