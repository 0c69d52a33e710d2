"""Protection API, permission tickets, user policies and RPTs against the real Keycloak.

Every test creates what it needs under a unique name and deletes it afterwards. User-owned
resources (alice's albums) are created through the admin API: Keycloak 26.6+ makes the
resource server the owner of anything created with a PAT (see ``OwnerIgnored``).
Where Keycloak releases differ, the test states the rule per version (``keycloak_version``).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kc_core import Client
from kc_core.errors import KeycloakResponseError
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.server import KeycloakRealm
from kc_core.uma import (
    CLAIM_TOKEN_FORMAT_ID_TOKEN,
    AccessDenied,
    AuthzClient,
    OwnerIgnored,
    OwnerTokenRequired,
    PermissionRequest,
    Resource,
    UmaPolicy,
)

pytestmark = pytest.mark.integration

#: Keycloak 26.5 and later create a ticket on a user's resource with the PAT, and refuse the
#: owner's own token (it lacks ``uma_protection``); earlier releases accept only the owner's.
TICKETS_WITH_THE_PAT = (26, 5)
#: Keycloak 26.6 and later give every resource created with a PAT to the resource server.
PAT_RESOURCES_BELONG_TO_THE_SERVER = (26, 6)


def _payload(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.fixture(scope="module")
def user_token(authz_client: Client, keycloak: KeycloakRealm) -> Callable[[str], str]:
    def token(username: str) -> str:
        return authz_client.password_grant(username, keycloak.user(username).password).access_token

    return token


@pytest.fixture(scope="module")
def user_id(authz_client: Client, user_token: Callable[[str], str]) -> Callable[[str], str]:
    def sub(username: str) -> str:
        return str(authz_client.validator.validate(user_token(username))["sub"])

    return sub


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def alice_album(
    keycloak_admin: KeycloakAdmin, keycloak: KeycloakRealm, authz: AuthzClient, unique: str
) -> Iterator[Resource]:
    """An owner-managed album of alice's (no type, so only she and her shares reach it)."""
    internal_id = keycloak_admin.client(keycloak.realm, "kc-authz")["id"]
    response = keycloak_admin.post(
        f"{keycloak_admin.realm_path(keycloak.realm)}/clients/{internal_id}"
        "/authz/resource-server/resource",
        json={
            "name": f"alice-album-{unique}",
            "uris": [f"/albums/{unique}"],
            "scopes": [{"name": "album:view"}, {"name": "album:delete"}],
            "ownerManagedAccess": True,
            "owner": "alice",
        },
    )
    album = Resource.from_json(response.json())
    assert album.id is not None
    yield album
    authz.resources.delete(album.id)


@pytest.fixture
def server_resources(authz: AuthzClient, unique: str) -> Iterator[list[Resource]]:
    """A list to put resources owned by the resource server in; deleted after the test."""
    created: list[Resource] = []
    yield created
    for resource in created:
        assert resource.id is not None
        authz.resources.delete(resource.id)


# -- PAT --------------------------------------------------------------------------------------


def test_pat_is_cached_and_carries_uma_protection(authz: AuthzClient, authz_client: Client) -> None:
    first = authz.pat()
    assert authz.pat() == first
    claims = authz_client.validator.validate(first)
    assert "uma_protection" in claims["resource_access"]["kc-authz"]["roles"]


# -- resource sets ----------------------------------------------------------------------------


def test_resource_create_read_update_delete(authz: AuthzClient, unique: str) -> None:
    created = authz.resources.create(
        Resource(
            name=f"doc-{unique}",
            type=f"urn:kc-test:{unique}",
            uris=(f"/docs/{unique}",),
            scopes=("album:view",),
            attributes={"color": ["red"]},
            display_name="A document",
            icon_uri="https://icons.example.test/doc.png",
        )
    )
    assert created.id is not None
    try:
        read = authz.resources.get(created.id)
        assert read.name == f"doc-{unique}"
        assert read.type == f"urn:kc-test:{unique}"
        assert read.uris == (f"/docs/{unique}",)
        assert read.scopes == ("album:view",)
        assert read.attributes == {"color": ("red",)}
        assert read.display_name == "A document"
        assert read.icon_uri == "https://icons.example.test/doc.png"

        authz.resources.update(
            Resource(
                id=created.id,
                name=f"doc-{unique}",
                uris=(f"/docs/{unique}", f"/files/{unique}"),
                scopes=("album:view", "album:delete"),
            )
        )
        updated = authz.resources.get(created.id)
        assert set(updated.uris) == {f"/docs/{unique}", f"/files/{unique}"}
        assert set(updated.scopes) == {"album:view", "album:delete"}
    finally:
        authz.resources.delete(created.id)
    with pytest.raises(KeycloakResponseError) as raised:
        authz.resources.get(created.id)
    assert raised.value.status == 404


def test_resource_queries_filter_and_page(
    authz: AuthzClient, unique: str, server_resources: list[Resource], alice_album: Resource
) -> None:
    for index in range(3):
        server_resources.append(
            authz.resources.create(
                Resource(
                    name=f"q-{unique}-{index}",
                    type=f"urn:kc-test:{unique}:{index % 2}",
                    uris=(f"/q/{unique}/{index}/*",),
                    scopes=("album:delete",) if index == 2 else ("album:view",),
                )
            )
        )
    ids = [r.id for r in server_resources]

    assert set(authz.resources.ids(name=f"q-{unique}")) == set(ids)  # partial
    assert authz.resources.ids(name=f"q-{unique}-1", exact_name=True) == (ids[1],)
    assert authz.resources.ids(name=f"q-{unique}", exact_name=True) == ()
    assert authz.resources.ids(uri=f"/q/{unique}/0/*") == (ids[0],)
    assert [r.id for r in authz.resources.matching(f"/q/{unique}/1/photos/7")] == [ids[1]]
    assert set(authz.resources.ids(type=f"urn:kc-test:{unique}:0")) == {ids[0], ids[2]}
    by_scope = set(authz.resources.ids(scope="album:delete", name=f"q-{unique}"))
    assert by_scope == {ids[2]}
    assert authz.resources.ids(owner="alice") == (alice_album.id,)

    page_one = authz.resources.ids(name=f"q-{unique}", first=0, max=2)
    page_two = authz.resources.ids(name=f"q-{unique}", first=2, max=2)
    assert len(page_one) == 2
    assert len(page_two) == 1
    assert set(page_one + page_two) == set(ids)

    deep = authz.resources.find(name=f"q-{unique}-2", exact_name=True)
    assert [(r.id, r.scopes) for r in deep] == [(ids[2], ("album:delete",))]
    found = authz.resources.find_by_name(f"q-{unique}-0")
    assert found is not None
    assert found.id == ids[0]
    assert authz.resources.find_by_name(f"q-{unique}-none") is None


def test_resource_owner_is_honoured_or_refused(
    authz: AuthzClient, unique: str, keycloak_version: tuple[int, ...]
) -> None:
    wanted = Resource(name=f"owned-{unique}", owner="alice", owner_managed_access=True)
    if keycloak_version >= PAT_RESOURCES_BELONG_TO_THE_SERVER:
        with pytest.raises(OwnerIgnored):
            authz.resources.create(wanted)
        # kc removed the resource Keycloak gave to the resource server.
        assert authz.resources.ids(name=wanted.name, exact_name=True) == ()
    else:
        created = authz.resources.create(wanted)
        assert created.id is not None
        authz.resources.delete(created.id)
        assert created.owner_name == "alice"


# -- permission tickets -------------------------------------------------------------------------


def test_ticket_create_find_approve_delete(
    authz: AuthzClient,
    alice_album: Resource,
    user_token: Callable[[str], str],
    user_id: Callable[[str], str],
) -> None:
    assert alice_album.id is not None
    bob = user_token("bob")
    view = [PermissionRequest(alice_album.id, ("album:view",))]
    ticket = authz.tickets.create(
        resource_name=alice_album.name,
        requester="bob",
        scope="album:view",
        owner_token=user_token("alice"),  # needed before Keycloak 26.5
    )
    assert ticket.id is not None
    assert ticket.resource == alice_album.id
    assert not ticket.granted
    assert not authz.decide(bob, permissions=view)

    found = authz.tickets.find(
        resource_id=alice_album.id, requester=user_id("bob"), return_names=True
    )
    assert [(t.id, t.requester_name, t.owner_name, t.scope_name) for t in found] == [
        (ticket.id, "bob", "alice", "album:view")
    ]
    assert (
        authz.tickets.find(owner=user_id("alice"), granted=True, resource_id=alice_album.id) == ()
    )

    authz.tickets.approve(found[0])
    assert authz.tickets.find(resource_id=alice_album.id, granted=True)[0].id == ticket.id
    assert authz.decide(bob, permissions=view)

    authz.tickets.delete(ticket.id)
    assert authz.tickets.find(resource_id=alice_album.id) == ()
    assert not authz.decide(bob, permissions=view)


def test_who_may_create_a_ticket_on_a_users_resource(
    authz: AuthzClient,
    keycloak: KeycloakRealm,
    alice_album: Resource,
    user_token: Callable[[str], str],
    user_id: Callable[[str], str],
    keycloak_version: tuple[int, ...],
) -> None:
    assert alice_album.id is not None
    alice = user_token("alice")
    if keycloak_version >= TICKETS_WITH_THE_PAT:
        own = requests.post(
            f"{keycloak.issuer}/authz/protection/permission/ticket",
            json={"resource": alice_album.id, "scopeName": "album:view", "requesterName": "bob"},
            headers={"Authorization": f"Bearer {alice}"},
            timeout=10,
        )
        assert (own.status_code, own.json()["error"]) == (403, "invalid_scope")
        with_pat = authz.tickets.create(
            resource_id=alice_album.id, requester="bob", scope="album:view"
        )
        assert with_pat.id is not None
        authz.tickets.delete(with_pat.id)
    else:
        with pytest.raises(OwnerTokenRequired) as refused:
            authz.tickets.create(resource_id=alice_album.id, requester="bob", scope="album:view")
        assert (refused.value.status, refused.value.error) == (403, "not_authorised")
    assert authz.tickets.find(resource_id=alice_album.id) == ()

    # With the owner's token at hand, one call serves every version.
    ticket = authz.tickets.create(
        resource_id=alice_album.id, requester="bob", scope="album:view", owner_token=alice
    )
    assert ticket.id is not None
    assert (ticket.owner, ticket.requester) == (user_id("alice"), user_id("bob"))
    authz.tickets.delete(ticket.id)


def test_permission_endpoint_issues_a_ticket_with_claims(
    authz: AuthzClient, authz_client: Client, alice_album: Resource
) -> None:
    assert alice_album.id is not None
    ticket = authz.permission_ticket(
        [PermissionRequest(alice_album.id, ("album:view",), {"tenant": "acme"})]
    )
    payload = _payload(ticket)
    assert payload["permissions"] == [{"rsid": alice_album.id, "scopes": ["album:view"]}]
    assert payload["claims"] == {"tenant": ["acme"]}
    # The seed's call keeps working through Client.
    seed = authz_client.find_ticket(
        [{"resource_id": alice_album.id, "resource_scopes": ["album:view"]}]
    )
    assert isinstance(seed["ticket"], str)


# -- user-managed permission policies ----------------------------------------------------------


def test_user_policy_create_find_update_delete(
    authz: AuthzClient, alice_album: Resource, user_token: Callable[[str], str], unique: str
) -> None:
    assert alice_album.id is not None
    alice, carol = user_token("alice"), user_token("carol")
    delete = [PermissionRequest(alice_album.id, ("album:delete",))]
    view = [PermissionRequest(alice_album.id, ("album:view",))]
    assert not authz.decide(carol, permissions=delete)

    policy = authz.policies.create(
        alice_album.id,
        UmaPolicy(name=f"share-{unique}", scopes=("album:delete",), users=("carol",)),
        token=alice,
    )
    assert policy.id is not None
    try:
        assert authz.decide(carol, permissions=delete)
        found = authz.policies.find(token=alice, resource_id=alice_album.id, name=policy.name)
        assert [(p.id, p.scopes, p.users) for p in found] == [
            (policy.id, ("album:delete",), ("carol",))
        ]
        authz.policies.update(
            UmaPolicy(id=policy.id, name=policy.name, scopes=("album:view",), users=("carol",)),
            token=alice,
        )
        assert authz.decide(carol, permissions=view)
        assert not authz.decide(carol, permissions=delete)
    finally:
        authz.policies.delete(policy.id, token=alice)
    assert authz.policies.find(token=alice, name=policy.name) == ()
    assert not authz.decide(carol, permissions=view)


# -- RPTs -----------------------------------------------------------------------------------------


def test_rpt_for_a_permission_list(
    authz: AuthzClient, authz_client: Client, user_token: Callable[[str], str]
) -> None:
    rpt = authz.rpt(user_token("alice"), permissions=["Admin Resource#admin:access"])
    claims = authz_client.validator.validate(rpt.access_token)
    audiences = [claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"]
    assert "kc-authz" in audiences
    permissions = claims["authorization"]["permissions"]
    assert [(p["rsname"], p["scopes"]) for p in permissions] == [
        ("Admin Resource", ["admin:access"])
    ]


def test_rpt_upgrade_keeps_earlier_permissions(
    authz: AuthzClient, authz_client: Client, user_token: Callable[[str], str]
) -> None:
    alice = user_token("alice")
    first = authz.rpt(alice, permissions=["Admin Resource"])
    upgraded = authz.rpt(alice, permissions=["Public Resource"], rpt=first.access_token)
    names = {
        p["rsname"]
        for p in authz_client.validator.validate(upgraded.access_token)["authorization"][
            "permissions"
        ]
    }
    assert names == {"Admin Resource", "Public Resource"}


def test_rpt_refused_raises_access_denied(
    authz: AuthzClient, user_token: Callable[[str], str]
) -> None:
    with pytest.raises(AccessDenied) as raised:
        authz.rpt(user_token("bob"), permissions=["Admin Resource"])
    assert raised.value.status == 403
    assert not raised.value.request_submitted


def test_decision_and_permissions_response_modes(
    authz: AuthzClient, user_token: Callable[[str], str]
) -> None:
    bob = user_token("bob")
    assert authz.decide(bob, permissions=["Album Resource#album:view"])
    assert not authz.decide(bob, permissions=["Album Resource#album:delete"])
    granted = authz.grant(bob, permissions=["Album Resource#album:view,album:delete"])
    assert [(p.resource_name, p.scopes) for p in granted] == [
        ("Album Resource", frozenset({"album:view"}))
    ]
    with pytest.raises(AccessDenied):
        authz.grant(user_token("carol"), permissions=["Album Resource"])


def test_pushed_claims_reach_the_rpt(
    authz: AuthzClient, authz_client: Client, user_token: Callable[[str], str]
) -> None:
    rpt = authz.rpt(
        user_token("alice"), permissions=["Public Resource"], claims={"tenant": ["acme"]}
    )
    permission = authz_client.validator.validate(rpt.access_token)["authorization"]["permissions"][
        0
    ]
    assert permission["claims"] == {"tenant": ["acme"]}


def test_id_token_can_be_pushed_as_claim_token(
    authz: AuthzClient, authz_client: Client, keycloak: KeycloakRealm
) -> None:
    tokens = authz_client.password_grant("alice", keycloak.user("alice").password)
    assert tokens.id_token is not None
    rpt = authz.rpt(
        tokens.access_token,
        permissions=["Public Resource"],
        claim_token=tokens.id_token,
        claim_token_format=CLAIM_TOKEN_FORMAT_ID_TOKEN,
    )
    assert authz_client.validator.validate(rpt.access_token)["authorization"]["permissions"]
    # The https spelling (as some documents write it) is translated, not refused.
    https_format = CLAIM_TOKEN_FORMAT_ID_TOKEN.replace("http://", "https://")
    authz.rpt(
        tokens.access_token,
        permissions=["Public Resource"],
        claim_token=tokens.id_token,
        claim_token_format=https_format,
    )


def test_client_gets_an_rpt_for_its_own_service_account(
    authz: AuthzClient, authz_client: Client
) -> None:
    rpt = authz.rpt(permissions=["Public Resource"])
    claims = authz_client.validator.validate(rpt.access_token)
    assert claims["azp"] == "kc-authz"
    assert claims["authorization"]["permissions"][0]["rsname"] == "Public Resource"


def test_rpt_introspection_lists_permissions(
    authz: AuthzClient, user_token: Callable[[str], str]
) -> None:
    alice = user_token("alice")
    rpt = authz.rpt(alice, permissions=["Admin Resource#admin:access"])
    introspection = authz.introspect_rpt(rpt.access_token)
    assert introspection.active
    assert [(p.resource_name, p.scopes) for p in introspection.permissions] == [
        ("Admin Resource", frozenset({"admin:access"}))
    ]
    assert not authz.introspect_rpt("not-a-token").active
