"""kc-django: Keycloak for Django, on kc-core's engine.

Add ``"kc_django"`` to ``INSTALLED_APPS``, ``kc_django.middleware.KeycloakMiddleware`` to
``MIDDLEWARE`` and ``path("kc/", include("kc_django.urls"))`` to the URLconf; protect views
with :func:`login_required`, :func:`roles_required`, :func:`bearer_required` or
:func:`protect` (class-based views: :mod:`kc_django.mixins`). ``request.user`` is the
Keycloak user; with ``kc_django.backends.KeycloakBackend`` in ``AUTHENTICATION_BACKENDS``
it is a local ``User`` kept in step with Keycloak (roles mapped to ``is_staff``,
``is_superuser`` and groups: :mod:`kc_django.roles`; the admin: :mod:`kc_django.admin`).
Django REST framework: :mod:`kc_django.drf`. The earlier library's middleware is
:class:`AuthenticationMiddleware` (:mod:`kc_django.seed`).
"""

from .apps import engine_of
from .authentication import access_token_of, identity_of
from .decorators import bearer_required, login_required, protect, roles_required
from .mixins import BearerRequiredMixin, LoginRequiredMixin, ProtectMixin, RolesRequiredMixin
from .seed import AuthenticationMiddleware
from .users import AnonymousUser, KeycloakUser

__all__ = [
    "AnonymousUser",
    "AuthenticationMiddleware",
    "BearerRequiredMixin",
    "KeycloakUser",
    "LoginRequiredMixin",
    "ProtectMixin",
    "RolesRequiredMixin",
    "access_token_of",
    "bearer_required",
    "engine_of",
    "identity_of",
    "login_required",
    "protect",
    "roles_required",
]

__version__ = "0.1.0"
