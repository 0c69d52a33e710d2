"""``request.user`` without a database: the Keycloak user, or an anonymous visitor.

Both speak enough of Django's user interface for templates, ``django.contrib.auth``'s
context processor and views written for Django users (``is_authenticated``,
``get_username()``, ``has_perm()`` ...). Roles come from the token: ``has_role("realm:admin")``.
When ``kc_django.backends.KeycloakBackend`` is in ``AUTHENTICATION_BACKENDS``, ``request.user``
is a local ``User`` instead (see :mod:`kc_django.backends`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kc_core.roles import client_roles, has_role, realm_roles

__all__ = ["AnonymousUser", "KeycloakUser"]


class KeycloakUser:
    """A logged-in Keycloak user, as ``request.user``.

    ``pk`` and ``id`` are the subject (``sub``, Keycloak's id of the user); ``username`` is
    ``preferred_username``. The identity kc built (:class:`kc_core.engine.Identity` unless a
    ``kc_build_identity`` hook returned another object) is ``kc_identity``; its other
    attributes are readable here too. Django permissions are not granted (``has_perm`` is
    ``False``): check roles with :meth:`has_role` or the decorators.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, identity: Any, access_token: str | None, *, client_id: str | None) -> None:
        self.kc_identity = identity
        self.access_token = access_token
        self._client_id = client_id

    @property
    def pk(self) -> str:
        """The subject (``sub``)."""
        return self.sub

    @property
    def id(self) -> str:
        """The subject (``sub``)."""
        return self.sub

    @property
    def sub(self) -> str:
        """Keycloak's id of the user."""
        return str(getattr(self.kc_identity, "sub", "") or "")

    @property
    def username(self) -> str:
        """``preferred_username`` (else the subject)."""
        value = getattr(self.kc_identity, "username", None)
        return self.sub if value is None else str(value)

    @property
    def email(self) -> str:
        """The e-mail address, or ``""`` (Django's convention)."""
        return str(getattr(self.kc_identity, "email", None) or "")

    @property
    def name(self) -> str:
        """The full name, or ``""``."""
        return str(getattr(self.kc_identity, "name", None) or "")

    @property
    def claims(self) -> Mapping[str, Any]:
        """The validated access-token claims (read-only)."""
        claims: Mapping[str, Any] = getattr(self.kc_identity, "claims", {}) or {}
        return claims

    @property
    def realm_roles(self) -> frozenset[str]:
        """Realm roles granted by the token."""
        return realm_roles(self.claims)

    def client_roles(self, client_id: str) -> frozenset[str]:
        """Roles of client ``client_id`` granted by the token."""
        return client_roles(self.claims, client_id)

    def has_role(self, spec: str) -> bool:
        """Whether the token grants ``spec`` (``realm:admin``, ``kc-api:reader`` or a bare
        role of this client)."""
        return has_role(self.claims, spec, client_id=self._client_id or "")

    def get_username(self) -> str:
        """Django's name for :attr:`username`."""
        return self.username

    def get_full_name(self) -> str:
        """The full name, else the username."""
        return self.name or self.username

    def get_short_name(self) -> str:
        """``given_name``, else the username."""
        return str(self.claims.get("given_name") or self.username)

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Django permissions are not Keycloak's: always ``False`` (check roles instead)."""
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        """``False`` unless ``perm_list`` is empty."""
        return not list(perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Always ``False``."""
        return False

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: the app's own identity attributes.
        if name.startswith("_") or name == "kc_identity":
            raise AttributeError(name)
        return getattr(self.kc_identity, name)

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"KeycloakUser(sub={self.sub!r}, username={self.username!r})"


class AnonymousUser:
    """``request.user`` of a visitor who is not logged in (no roles, no permissions)."""

    is_authenticated = False
    is_anonymous = True
    is_active = False
    is_staff = False
    is_superuser = False
    pk = None
    id = None
    sub = ""
    username = ""
    email = ""
    name = ""
    access_token = None
    kc_identity = None

    @property
    def claims(self) -> Mapping[str, Any]:
        """No claims."""
        return {}

    @property
    def realm_roles(self) -> frozenset[str]:
        """No roles."""
        return frozenset()

    def client_roles(self, client_id: str) -> frozenset[str]:
        """No roles."""
        return frozenset()

    def has_role(self, spec: str) -> bool:
        """Always ``False``."""
        return False

    def get_username(self) -> str:
        """``""``."""
        return ""

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Always ``False``."""
        return False

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        """``False`` unless ``perm_list`` is empty."""
        return not list(perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Always ``False``."""
        return False

    def __str__(self) -> str:
        return "AnonymousUser"

    def __repr__(self) -> str:
        return "AnonymousUser()"


ANONYMOUS = AnonymousUser()
