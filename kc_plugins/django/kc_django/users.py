"""``request.user`` without a database: the Keycloak user, or an anonymous visitor.

Both speak enough of Django's user interface for templates, ``django.contrib.auth``'s
context processor and views written for Django users (``is_authenticated``,
``get_username()``, ``has_perm()`` ...). Roles come from the token: ``has_role("realm:admin")``.
When ``kc_django.backends.KeycloakBackend`` is in ``AUTHENTICATION_BACKENDS``, ``request.user``
is a local ``User`` instead (see :mod:`kc_django.backends`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from kc_core.adapters import AnonymousRoles, KeycloakUserBase

__all__ = ["AnonymousUser", "KeycloakUser"]

_User = TypeVar("_User")


class _DjangoUser:
    """What both users share: never staff, and no Django permissions (Keycloak's are roles)."""

    is_staff = False
    is_superuser = False

    @property
    def keycloak(self: _User) -> _User:
        """This user (a local ``User``'s ``keycloak`` is its Keycloak user): the same
        ``request.user.keycloak.realm_roles`` with or without local users."""
        return self

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Always ``False``."""
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        """``False`` unless ``perm_list`` is empty."""
        return not list(perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Always ``False``."""
        return False


class KeycloakUser(_DjangoUser, KeycloakUserBase):
    """A logged-in Keycloak user, as ``request.user``.

    ``pk`` and ``id`` are the subject (``sub``, Keycloak's id of the user); ``username`` is
    ``preferred_username``. Roles: ``has_role("realm:admin")``, ``realm_roles``,
    ``client_roles(id)``; the identity kc built is ``kc_identity`` (see
    :class:`kc_core.adapters.KeycloakUserBase`), its attributes readable here too. Django
    permissions are not granted (``has_perm`` is ``False``).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self) -> str:
        """The subject (``sub``)."""
        return self.sub

    id = pk

    @property
    def username(self) -> str:
        """``preferred_username`` (else the subject)."""
        username = self.identity_text("username")
        return self.sub if username is None else username

    @property
    def email(self) -> str:
        """The e-mail address, or ``""`` (Django's convention)."""
        return str(getattr(self.kc_identity, "email", None) or "")

    @property
    def name(self) -> str:
        """The full name, or ``""``."""
        return str(getattr(self.kc_identity, "name", None) or "")

    def get_username(self) -> str:
        """Django's name for :attr:`username`."""
        return self.username

    def get_full_name(self) -> str:
        """The full name, else the username."""
        return self.name or self.username

    def get_short_name(self) -> str:
        """``given_name``, else the username."""
        return str(self.claims.get("given_name") or self.username)

    def __str__(self) -> str:
        return self.username


class AnonymousUser(_DjangoUser, AnonymousRoles):
    """``request.user`` of a visitor who is not logged in (no roles, no permissions)."""

    is_authenticated = False
    is_anonymous = True
    is_active = False
    pk = None
    id = None
    sub = ""
    username = ""
    email = ""
    name = ""
    access_token = None
    kc_identity = None

    #: No claims.
    claims: Mapping[str, Any] = MappingProxyType({})

    def get_username(self) -> str:
        """``""``."""
        return ""

    def __str__(self) -> str:
        return "AnonymousUser"

    def __repr__(self) -> str:
        return "AnonymousUser()"


ANONYMOUS = AnonymousUser()
