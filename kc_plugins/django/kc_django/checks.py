"""System checks (``manage.py check``): settings kc cannot use, a middleware order that
cannot work, the URLs included at another path than the engine's prefix.

=================  =========================================================================
``kc_django.E001``  the Keycloak settings are missing or invalid
``kc_django.E002``  ``kc_django.urls`` is included at another path than ``KEYCLOAK_PREFIX``
``kc_django.W001``  ``KeycloakMiddleware`` is not after ``SessionMiddleware``
``kc_django.W002``  Django's ``AuthenticationMiddleware`` runs after ``KeycloakMiddleware``
``kc_django.W003``  an admin site logs in with its password form (see :mod:`kc_django.admin`)
=================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, reverse

from kc_core import ConfigError

from .apps import app_config

__all__ = ["check_middleware", "check_settings", "check_urls"]

_OURS = "kc_django.middleware.KeycloakMiddleware"
_SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
_DJANGO_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


@register()
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The engine can be built from the settings (no network is used)."""
    try:
        app_config().engine  # noqa: B018 - builds it
    except ConfigError as exc:
        return [Error(str(exc), hint="See docs/django.md, 'Settings'.", id="kc_django.E001")]
    return []


_NO_SESSIONS = Warning(
    "KeycloakMiddleware runs without SessionMiddleware before it: browser logins cannot work "
    "(bearer tokens still do).",
    hint=f"Put {_SESSIONS!r} before {_OURS!r} in MIDDLEWARE.",
    id="kc_django.W001",
)
_USER_REPLACED = Warning(
    "Django's AuthenticationMiddleware runs after KeycloakMiddleware and replaces the "
    "Keycloak user on request.user.",
    hint=f"Remove {_DJANGO_AUTH!r}, or put it before {_OURS!r}.",
    id="kc_django.W002",
)


@register()
def check_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``KeycloakMiddleware`` after the sessions, and not overwritten by Django's auth."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if _OURS not in middleware:
        return []
    ours = middleware.index(_OURS)
    found: list[CheckMessage] = []
    if _SESSIONS not in middleware[:ours]:
        found.append(_NO_SESSIONS)
    if _DJANGO_AUTH in middleware[ours:]:
        found.append(_USER_REPLACED)
    return found


@register(Tags.urls)
def check_urls(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``kc_django.urls`` is included where the engine builds its callback URL."""
    try:
        engine = app_config().engine
        callback = reverse("keycloak:callback")
    except (ConfigError, NoReverseMatch):
        return []  # reported by check_settings, or the URLs are mounted another way
    script_prefix = getattr(settings, "FORCE_SCRIPT_NAME", None) or ""
    expected = engine.settings.callback_path
    if callback not in (expected, script_prefix.rstrip("/") + expected):
        return [
            Error(
                f"kc_django.urls is included at {callback[: -len('/callback')]!r} but "
                f"KEYCLOAK_PREFIX is {engine.settings.prefix!r}: Keycloak would send "
                "logins back to a URL the project does not serve.",
                hint="Include kc_django.urls at the prefix, or set KEYCLOAK_PREFIX to match.",
                id="kc_django.E002",
            )
        ]
    return []
