"""Role specs over Keycloak's realm_access / resource_access claims."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from kc_core.roles import client_roles, has_role, has_scope, realm_roles

CLAIMS: dict[str, Any] = {
    "realm_access": {"roles": ["admin", "user", 7]},
    "resource_access": {
        "kc-api": {"roles": ["reader", "writer"]},
        "kc-web": {"roles": ["editor"]},
        "urn:acme:api": {"roles": ["viewer"]},
    },
    "scope": "openid profile email",
}


def test_realm_roles_ignore_non_strings() -> None:
    assert realm_roles(CLAIMS) == {"admin", "user"}


def test_client_roles_of_a_named_client() -> None:
    assert client_roles(CLAIMS, "kc-api") == {"reader", "writer"}
    assert client_roles(CLAIMS, "unknown") == frozenset()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("realm:admin", True),
        ("realm:auditor", False),
        ("kc-api:reader", True),
        ("kc-api:admin", False),
        ("editor", True),  # bare name: this client's role
        ("reader", False),  # kc-api's role, not kc-web's
        ("urn:acme:api:viewer", True),  # the owner ends at the last colon
    ],
)
def test_has_role_specs(spec: str, expected: bool) -> None:
    assert has_role(CLAIMS, spec, client_id="kc-web") is expected


def test_realm_role_is_not_a_client_role() -> None:
    assert not has_role(CLAIMS, "admin", client_id="kc-web")


@pytest.mark.parametrize("spec", ["", "realm:", ":admin"])
def test_has_role_refuses_specs_naming_no_role(spec: str) -> None:
    with pytest.raises(ValueError, match="role spec"):
        has_role(CLAIMS, spec, client_id="kc-web")


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"realm_access": None, "resource_access": "x"},
        {"realm_access": {"roles": "admin"}, "resource_access": {"kc-web": []}},
    ],
)
def test_malformed_claims_grant_nothing(claims: dict[str, Any]) -> None:
    assert not has_role(claims, "realm:admin", client_id="kc-web")
    assert not has_role(claims, "editor", client_id="kc-web")


def test_read_only_mappings_and_tuples_work() -> None:
    claims = MappingProxyType(
        {"realm_access": MappingProxyType({"roles": ("admin",)}), "resource_access": {}}
    )
    assert has_role(claims, "realm:admin", client_id="kc-web")


def test_has_scope() -> None:
    assert has_scope(CLAIMS, ["openid", "email"])
    assert has_scope(CLAIMS, "profile email")
    assert not has_scope(CLAIMS, ["offline_access"])
    assert not has_scope({}, ["openid"])
