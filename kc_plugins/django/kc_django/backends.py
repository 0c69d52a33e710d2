"""Local Django users mirroring Keycloak's: an authentication backend for ``django.contrib.auth``.

Optional. Add it to ``AUTHENTICATION_BACKENDS`` (with ``django.contrib.auth`` installed)::

    AUTHENTICATION_BACKENDS = ["kc_django.backends.KeycloakBackend"]

Then each login creates or updates a local ``User`` from the ID token's claims (username,
e-mail, names), and ``request.user`` is that ``User``, so foreign keys, the admin and
Django permissions work as usual. Keycloak stays the authority on who is logged in: the
session is the engine's, and ends with a Keycloak logout or back-channel logout. Subclass
to choose the username (:meth:`KeycloakBackend.clean_username`) or copy more claims
(:meth:`KeycloakBackend.configure_user`). It never accepts a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from kc_core.adapters import set_changed
from kc_core.oidc import TokenSet
from kc_core.plugins import hookimpl

from .apps import engine_of
from .roles import RoleMapping

__all__ = ["KeycloakBackend", "LocalUsers"]

#: The user model's fields copied from the ID token's claims of the same meaning.
_CLAIMED_FIELDS = {"email": "email", "first_name": "given_name", "last_name": "family_name"}


class KeycloakBackend(BaseBackend):
    """Authenticate with validated Keycloak claims; create or update the local user.

    ``django.contrib.auth.authenticate(request, kc_claims=claims)`` returns the user of
    those (already validated) claims. kc-django calls it at each login.
    """

    #: Create a local user the first time a Keycloak user is seen (at login or by token).
    create_unknown_user = True

    def authenticate(
        self, request: HttpRequest | None, kc_claims: Mapping[str, Any] | None = None, **_: Any
    ) -> AbstractBaseUser | None:
        """The local user of ``kc_claims``, created or updated; ``None`` without claims."""
        if kc_claims is None:
            return None
        return self.user_for_claims(request, kc_claims, update=True)

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        """The local user with primary key ``user_id``."""
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None

    def clean_username(self, claims: Mapping[str, Any]) -> str | None:
        """The local username of a Keycloak user: ``preferred_username``.

        Override to key users on ``sub`` (stable when a Keycloak username changes).
        """
        value = claims.get("preferred_username")
        return str(value) if value else None

    def configure_user(
        self,
        request: HttpRequest | None,
        user: AbstractBaseUser,
        claims: Mapping[str, Any],
        created: bool,
    ) -> AbstractBaseUser:
        """Copy claims onto ``user`` and save it if anything changed; return it.

        Copies ``email``, ``given_name`` and ``family_name`` to the fields of the same
        meaning the user model has, and sets ``is_staff``, ``is_superuser`` and groups as
        the role settings map them (:mod:`kc_django.roles`). Override to copy more (call
        ``super()``).
        """
        claimed = {field: claims.get(claim) for field, claim in _CLAIMED_FIELDS.items()}
        # Text claims only: a claim missing (or of another type) leaves its field alone.
        changed = set_changed(user, {f: v for f, v in claimed.items() if isinstance(v, str)})
        if created:
            user.set_unusable_password()  # before any save (groups need a saved user)
        changed += RoleMapping.from_settings().apply(user, claims, created=created)
        if created:
            user.save()
        elif changed:
            user.save(update_fields=changed)
        return user

    def user_for_claims(
        self, request: HttpRequest | None, claims: Mapping[str, Any], *, update: bool = False
    ) -> AbstractBaseUser | None:
        """The local user of ``claims``: found, else created (:attr:`create_unknown_user`).

        ``update`` copies the claims onto an existing user too (done at login).
        """
        username = self.clean_username(claims)
        if not username:
            return None
        model: Any = get_user_model()  # the project's user model, whatever its fields
        lookup = {model.USERNAME_FIELD: username}
        if self.create_unknown_user:
            user, created = model._default_manager.get_or_create(**lookup)
        else:
            user, created = model._default_manager.filter(**lookup).first(), False
            if user is None:
                return None
        if created or update:
            user = self.configure_user(request, user, claims, created)
        return user if self.user_can_authenticate(user) else None

    def user_can_authenticate(self, user: AbstractBaseUser) -> bool:
        """Refuse users marked inactive locally (as Django's ``ModelBackend`` does)."""
        return getattr(user, "is_active", True) is not False


class LocalUsers:
    """kc plugin: at each login, create or update the local user (``kc_after_login``).

    Registered on the engine by kc-django when :class:`KeycloakBackend` is configured.
    """

    def __init__(self, backend: KeycloakBackend) -> None:
        self.backend = backend

    @hookimpl
    def kc_after_login(self, request: Any, tokens: TokenSet, identity: Any) -> None:
        if not isinstance(request, HttpRequest):
            return  # another framework's login, on an engine shared with it
        claims = tokens.id_claims or getattr(identity, "claims", None) or {}
        # Keycloak puts roles in the access token only (validated at the callback: cached).
        access = engine_of().client_for(request).validate_access_token(tokens.access_token)
        self.backend.user_for_claims(request, {**access, **claims}, update=True)
