"""Keycloak roles and groups mapped onto local Django users: ``is_staff``, ``is_superuser``
and Django groups, kept in step with Keycloak at every login.

Settings (in ``settings.KEYCLOAK`` or as ``KEYCLOAK_<NAME>``), each a list of entries, an
entry being a role spec (``realm:admin``, ``orders-api:editor``, or a bare role of this
client) or a Keycloak group path (``/staff``, matched against the token's ``groups`` claim,
which needs a *Group Membership* mapper in Keycloak)::

    KEYCLOAK = {
        ...,
        "STAFF_ROLES": ["realm:admin"],            # any of them: is_staff
        "SUPERUSER_ROLES": ["realm:django-root"],  # any of them: is_superuser (and is_staff)
        "GROUP_ROLES": {"editors": ["kc-api:writer", "/staff"]},  # Django group: any of them
    }

A flag whose setting is not given is left as it is (set it in the admin or the shell); a
Django group not named in ``GROUP_ROLES`` is never touched. Users get and lose what the
settings grant at each login; a bearer-token caller seen for the first time too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

from kc_core import ConfigError, KeycloakError
from kc_core.adapters import set_changed
from kc_core.roles import has_role

from .config import project_values

__all__ = ["RoleMapping", "holds_any", "this_client_id"]

STAFF_KEY = "KEYCLOAK_STAFF_ROLES"
SUPERUSER_KEY = "KEYCLOAK_SUPERUSER_ROLES"
GROUPS_KEY = "KEYCLOAK_GROUP_ROLES"


def _entries(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # from the environment: "realm:admin kc-api:writer"
        return tuple(value.replace(",", " ").split())
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key} must be a list of role specs or group paths", key=key)


def holds_any(claims: Mapping[str, Any], entries: Sequence[str], *, client_id: str) -> bool:
    """Whether the token grants one of ``entries`` (role specs, or group paths ``/name``)."""
    groups = claims.get("groups")
    member_of = set(groups) if isinstance(groups, list) else set()
    for entry in entries:
        if entry.startswith("/"):
            # Keycloak's group mapper writes full paths, or bare names with "full path" off.
            if entry in member_of or entry.rsplit("/", 1)[-1] in member_of:
                return True
        elif has_role(claims, entry, client_id=client_id):
            return True
    return False


def this_client_id(claims: Mapping[str, Any]) -> str:
    """The client a bare role belongs to: the project's client, else the token's ``azp``."""
    from .apps import app_config

    try:
        return app_config().engine.client.config.client_id
    except KeycloakError:  # several tenants (or none configured): the token's own client
        return str(claims.get("azp") or "")


@dataclass(frozen=True, slots=True)
class RoleMapping:
    """What Keycloak grants locally: ``None`` leaves a flag alone, groups not named stay."""

    staff: tuple[str, ...] | None = None
    superuser: tuple[str, ...] | None = None
    groups: Mapping[str, tuple[str, ...]] | None = None

    @classmethod
    def from_settings(cls, settings: Any = None) -> RoleMapping:
        """The mapping the project's settings give (default: ``django.conf.settings``).

        Raises:
            ConfigError: a setting is not a list of entries (or ``GROUP_ROLES`` not a dict).
        """
        values = project_values(django_settings if settings is None else settings)
        staff, superuser, groups = (values.get(k) for k in (STAFF_KEY, SUPERUSER_KEY, GROUPS_KEY))
        if groups is not None and not isinstance(groups, Mapping):
            raise ConfigError(f"{GROUPS_KEY} must map Django group names to lists", key=GROUPS_KEY)
        return cls(
            staff=None if staff is None else _entries(STAFF_KEY, staff),
            superuser=None if superuser is None else _entries(SUPERUSER_KEY, superuser),
            groups=None
            if groups is None
            else {str(name): _entries(GROUPS_KEY, v) for name, v in groups.items()},
        )

    @property
    def empty(self) -> bool:
        """Whether nothing is mapped (the users' flags and groups are left alone)."""
        return self.staff is None and self.superuser is None and not self.groups

    def flags(self, claims: Mapping[str, Any], client_id: str) -> dict[str, bool]:
        """The ``is_staff`` / ``is_superuser`` values the claims grant (mapped flags only)."""
        found: dict[str, bool] = {}
        if self.superuser is not None:
            found["is_superuser"] = holds_any(claims, self.superuser, client_id=client_id)
        if self.staff is not None or found.get("is_superuser"):
            staff = holds_any(claims, self.staff or (), client_id=client_id)
            found["is_staff"] = staff or found.get("is_superuser", False)
        return found

    def apply(self, user: Any, claims: Mapping[str, Any], *, created: bool) -> list[str]:
        """Set ``user``'s mapped flags and groups from ``claims``; return the changed fields.

        The flags are set on the object (the caller saves them); group membership is
        written at once (it needs the user saved: a new user is saved first).
        """
        if self.empty:
            return []
        client_id = this_client_id(claims)
        changed = set_changed(user, self.flags(claims, client_id))
        if self.groups and hasattr(user, "groups"):
            from django.contrib.auth.models import Group

            if user.pk is None:
                user.save()
            mapped = user.groups.filter(name__in=list(self.groups))
            held = set(mapped.values_list("name", flat=True))
            for name, entries in self.groups.items():
                granted = holds_any(claims, entries, client_id=client_id)
                if granted and name not in held:
                    user.groups.add(Group.objects.get_or_create(name=name)[0])
                elif not granted and name in held:
                    user.groups.remove(Group.objects.get(name=name))
        return changed
