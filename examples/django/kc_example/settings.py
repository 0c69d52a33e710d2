"""Settings of the kc-django example project (development only: DEBUG, a random key)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

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

# No database: sessions live in the cache (server-side, so the session id rotates at login).
DATABASES: dict[str, dict[str, str]] = {}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
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
