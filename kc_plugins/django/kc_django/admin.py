"""Django's admin behind Keycloak: its login and logout go through Keycloak.

The admin needs local users (``kc_django.backends.KeycloakBackend``) whose ``is_staff`` (and
``is_superuser``, groups) Keycloak's roles set at each login (:mod:`kc_django.roles`). Then
in ``urls.py``::

    from django.contrib import admin
    from kc_django.admin import admin_login, admin_logout

    admin.site.login = admin_login
    admin.site.logout = admin_logout

or, for an admin site of your own, subclass :class:`KeycloakAdminSite`. A visitor is sent to
Keycloak and back to the admin page first asked for; a logged-in user who is not staff gets
a 403 (the project's ``handler403``, else kc's page with a way to log out), never the
admin's password form, which cannot work for Keycloak users.

``manage.py check`` warns about an admin site whose login is still the password form
(``kc_django.W003``); Django's admin imports this module when it looks for ``admin``
modules, which registers the check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.contrib.admin.sites import all_sites
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.checks import CheckMessage, Warning, register
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import get_resolver

from .apps import engine_of
from .refusals import AccessRefused
from .views import _public
from .views import logout as keycloak_logout

__all__ = ["KeycloakAdminSite", "admin_login", "admin_logout", "check_admin_login"]


@_public  # Django 5.1's LoginRequiredMiddleware must let the admin's login through
def admin_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """The admin's login view: a Keycloak login, or a 403 for a user who is not staff.

    Raises:
        AccessRefused: the user is logged in but may not use the admin (a ``PermissionDenied``).
    """
    user: Any = request.user
    if user.is_authenticated:
        if user.is_active and user.is_staff:
            return HttpResponseRedirect(_next(request) or "../")
        raise AccessRefused(f"{user.get_username()} may not use the administration site")
    engine = engine_of()
    target = _next(request) or request.path.rsplit("/login/", 1)[0] + "/"
    return HttpResponseRedirect(f"{engine.settings.login_path}?{urlencode({'next': target})}")


@_public
def admin_logout(request: HttpRequest, extra_context: Any = None) -> HttpResponseBase:
    """The admin's logout: kc's (the Keycloak session ends too, by ``LOGOUT_MODE``)."""
    response: HttpResponseBase = keycloak_logout(request)
    return response


def _next(request: HttpRequest) -> str | None:
    # kc's login checks that it stays on this site (no open redirect).
    value = request.GET.get(REDIRECT_FIELD_NAME) or request.POST.get(REDIRECT_FIELD_NAME)
    return value or None


class KeycloakAdminSite(AdminSite):
    """An ``AdminSite`` whose login and logout are Keycloak's (see :func:`admin_login`)."""

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        """See :func:`admin_login`."""
        return admin_login(request, extra_context)

    # Django's logout renders a page; kc's redirects (through Keycloak's end-session page).
    def logout(  # type: ignore[override]
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponseBase:
        """See :func:`admin_logout`."""
        return admin_logout(request, extra_context)


@register()
def check_admin_login(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An admin site whose login is Django's password form (``kc_django.W003``)."""
    try:
        get_resolver().url_patterns  # noqa: B018 - imports the URLconf, which replaces logins
    except Exception:  # Django's own URL checks report a broken URLconf
        return []
    found: list[CheckMessage] = []
    for site in all_sites:
        if getattr(site.login, "__func__", None) is AdminSite.login:
            found.append(
                Warning(
                    f"The admin site {site.name!r} logs in with Django's password form, which "
                    "Keycloak users cannot use.",
                    hint="In urls.py: admin.site.login = kc_django.admin.admin_login (and "
                    "admin.site.logout = admin_logout), or use KeycloakAdminSite.",
                    id="kc_django.W003",
                )
            )
    return found
