"""kc_django.roles without a server: what the role settings grant for given claims."""

from __future__ import annotations

from typing import Any

import pytest
from kc_django.roles import RoleMapping, holds_any

from kc_core import ConfigError

CLAIMS: dict[str, Any] = {
    "azp": "shop-web",
    "realm_access": {"roles": ["user", "ops"]},
    "resource_access": {"shop-web": {"roles": ["editor"]}, "kc-api": {"roles": ["reader"]}},
    "groups": ["/staff/berlin", "auditors"],
}


@pytest.mark.parametrize(
    ("entries", "granted"),
    [
        (["realm:ops"], True),
        (["realm:admin"], False),
        (["kc-api:reader"], True),
        (["editor"], True),  # a bare role: this client's
        (["/staff/berlin"], True),
        (["/auditors"], True),  # the group mapper without full paths
        (["/staff"], False),  # a parent group is not membership
        (["realm:admin", "/auditors"], True),
        ([], False),
    ],
)
def test_holds_any_reads_roles_and_group_paths(entries: list[str], granted: bool) -> None:
    assert holds_any(CLAIMS, entries, client_id="shop-web") is granted


def test_flags_follow_the_settings_and_superusers_are_staff() -> None:
    mapping = RoleMapping(staff=("realm:admin",), superuser=("realm:ops",))
    assert mapping.flags(CLAIMS, "shop-web") == {"is_superuser": True, "is_staff": True}
    assert RoleMapping(staff=("realm:user",)).flags(CLAIMS, "shop-web") == {"is_staff": True}
    assert RoleMapping(staff=("realm:admin",)).flags(CLAIMS, "shop-web") == {"is_staff": False}
    assert RoleMapping().flags(CLAIMS, "shop-web") == {}, "unmapped flags are left alone"
    assert RoleMapping().empty


def test_settings_read_lists_strings_and_refuse_other_types() -> None:
    from types import SimpleNamespace

    given = SimpleNamespace(
        KEYCLOAK={"STAFF_ROLES": "realm:admin, realm:ops", "GROUP_ROLES": {"eds": ["/eds"]}},
        KEYCLOAK_SUPERUSER_ROLES=["realm:root"],
    )
    mapping = RoleMapping.from_settings(given)
    assert mapping == RoleMapping(
        staff=("realm:admin", "realm:ops"), superuser=("realm:root",), groups={"eds": ("/eds",)}
    )

    with pytest.raises(ConfigError, match="KEYCLOAK_STAFF_ROLES"):
        RoleMapping.from_settings(SimpleNamespace(KEYCLOAK_STAFF_ROLES=3))
