"""Keycloak roles in token claims: realm roles, client roles and role specs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["client_roles", "has_role", "has_scope", "realm_roles"]

_REALM = "realm"


def _roles(container: Any) -> frozenset[str]:
    # Claims come from JSON, but callers may hand in read-only mappings and tuples.
    roles = container.get("roles") if isinstance(container, Mapping) else None
    if isinstance(roles, list | tuple):
        return frozenset(r for r in roles if isinstance(r, str))
    return frozenset()


def _grants(container: Any, role: str) -> bool:
    # What _roles(container) holds, tested without building the set (a first-seen token).
    if type(container) is not dict and not isinstance(container, Mapping):
        return False
    roles = container.get("roles")
    return isinstance(roles, list | tuple) and role in roles


def _access(claims: Mapping[str, Any], client_id: str) -> Any:
    access = claims.get("resource_access")
    if type(access) is dict or isinstance(access, Mapping):
        return access.get(client_id)
    return None


def realm_roles(claims: Mapping[str, Any]) -> frozenset[str]:
    """The realm roles in ``realm_access.roles``."""
    return _roles(claims.get("realm_access"))


def client_roles(claims: Mapping[str, Any], client_id: str) -> frozenset[str]:
    """The roles of client ``client_id`` in ``resource_access``."""
    access = claims.get("resource_access")
    return _roles(access.get(client_id) if isinstance(access, Mapping) else None)


def has_role(claims: Mapping[str, Any], spec: str, *, client_id: str) -> bool:
    """Whether the token grants the role named by ``spec``.

    ``spec`` is written as commonly done with Keycloak: ``realm:admin`` for a realm role,
    ``orders-api:editor`` for a role of client ``orders-api``, and a bare ``editor`` for a
    role of this client (``client_id``). The owner ends at the last ``:``, so client ids
    holding colons (``urn:acme:api:editor``) work; role names cannot hold one.

    Raises:
        ValueError: ``spec`` names no role (empty, or ending in ``:``).
    """
    owner, sep, role = spec.rpartition(":")
    if not role or (sep and not owner):
        raise ValueError(f"not a role spec: {spec!r} (write realm:ROLE, CLIENT:ROLE or ROLE)")
    if not sep:
        return _grants(_access(claims, client_id), role)
    if owner == _REALM:
        return _grants(claims.get("realm_access"), role)
    return _grants(_access(claims, owner), role)


def has_scope(claims: Mapping[str, Any], scopes: Iterable[str]) -> bool:
    """Whether the token's space-separated ``scope`` claim holds every scope in ``scopes``.

    ``scopes`` is an iterable of names, or one space-separated string.
    """
    if isinstance(scopes, str):
        scopes = scopes.split()
    granted = claims.get("scope")
    present = set(granted.split()) if isinstance(granted, str) else set()
    return all(s in present for s in scopes)
