"""The policy enforcer against the real Keycloak: every mode, caching, claims and UMA sharing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kc_core import Client
from kc_core.enforcer import PolicyEnforcer
from kc_core.errors import ConfigError
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.server import KeycloakRealm
from kc_core.uma import AccessDenied, AuthzClient, Resource

pytestmark = pytest.mark.integration

ALBUMS: dict[str, Any] = {
    "path": "/albums/*",
    "name": "Album Resource",
    "methods": [
        {"method": "GET", "scopes": ["album:view"]},
        {"method": "DELETE", "scopes": ["album:delete"]},
    ],
}
PATHS: list[dict[str, Any]] = [
    ALBUMS,
    {"path": "/admin/*", "name": "Admin Resource"},
    {"path": "/public/*", "name": "Public Resource"},
    {"path": "/reports/*", "name": "Admin Resource", "enforcement-mode": "PERMISSIVE"},
    {"path": "/health", "enforcement-mode": "DISABLED"},
]


@pytest.fixture(scope="module")
def tokens(authz_client: Client, keycloak: KeycloakRealm) -> dict[str, str]:
    return {
        name: authz_client.password_grant(name, keycloak.user(name).password).access_token
        for name in ("alice", "bob", "carol")
    }


@pytest.fixture
def calls(authz_client: Client, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HTTP request the client sends to Keycloak from now on (method, URL, query)."""
    seen: list[str] = []
    send = authz_client.http.request

    def counting(method: str, url: str, **kwargs: Any) -> Any:
        seen.append(f"{method} {url} {kwargs.get('params') or ''}")
        return send(method, url, **kwargs)

    monkeypatch.setattr(authz_client.http, "request", counting)
    return seen


@pytest.fixture
def make_enforcer(authz: AuthzClient) -> Callable[..., PolicyEnforcer]:
    def make(**config: Any) -> PolicyEnforcer:
        config.setdefault("paths", PATHS)
        return PolicyEnforcer(authz, config)

    return make


def test_allowed_when_keycloak_grants_the_method_scope(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str]
) -> None:
    enforcer = make_enforcer()
    alice_delete = enforcer.enforce("DELETE", "/albums/1", token=tokens["alice"])
    assert alice_delete.allowed
    assert [(p.resource_name, p.scopes) for p in alice_delete.permissions] == [
        ("Album Resource", frozenset({"album:delete"}))
    ]
    assert enforcer.enforce("GET", "/albums/1", token=tokens["bob"]).allowed
    assert enforcer.enforce("GET", "/admin/users", token=tokens["alice"]).allowed
    assert enforcer.enforce("GET", "/public/index.html", token=tokens["carol"]).allowed


def test_denied_without_the_scope_the_resource_or_a_token(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str]
) -> None:
    enforcer = make_enforcer()
    bob_delete = enforcer.enforce("DELETE", "/albums/1", token=tokens["bob"])
    assert (bob_delete.allowed, bob_delete.status) == (False, 403)
    assert enforcer.enforce("GET", "/albums/1", token=tokens["carol"]).status == 403
    assert enforcer.enforce("GET", "/admin/users", token=tokens["bob"]).status == 403
    assert enforcer.enforce("GET", "/unknown", token=tokens["alice"]).status == 403
    anonymous = enforcer.enforce("GET", "/albums/1")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'


def test_denial_redirects_with_on_deny_redirect_to(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str]
) -> None:
    enforcer = make_enforcer(**{"on-deny-redirect-to": "/access-denied"})
    decision = enforcer.enforce("GET", "/admin/users", token=tokens["bob"])
    assert (decision.status, decision.headers) == (302, {"Location": "/access-denied"})


def test_permissive_path_and_permissive_enforcer(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str]
) -> None:
    enforcer = make_enforcer()
    # carol has no permission at all on the Admin Resource: the permissive path lets her in.
    assert enforcer.enforce("GET", "/reports/q1", token=tokens["carol"]).allowed
    assert not enforcer.enforce("GET", "/admin/q1", token=tokens["carol"]).allowed
    permissive = make_enforcer(**{"enforcement-mode": "PERMISSIVE"})
    assert permissive.enforce("GET", "/unknown", token=tokens["carol"]).allowed
    assert not permissive.enforce("GET", "/admin/q1", token=tokens["carol"]).allowed


def test_disabled_path_and_enforcer_ask_nothing(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str], calls: list[str]
) -> None:
    enforcer = make_enforcer()
    assert enforcer.enforce("GET", "/health").allowed
    disabled = make_enforcer(**{"enforcement-mode": "DISABLED"})
    assert disabled.enforce("DELETE", "/admin/x", token=tokens["carol"]).allowed
    assert calls == []


def test_cached_decision_makes_no_call_to_keycloak(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str], calls: list[str]
) -> None:
    enforcer = make_enforcer()
    enforcer.load_paths()
    enforcer.enforce("GET", "/albums/1", token=tokens["bob"])
    enforcer.enforce("DELETE", "/albums/1", token=tokens["bob"])
    asked = len(calls)
    assert asked >= 2
    for _ in range(20):
        assert enforcer.enforce("GET", "/albums/1", token=tokens["bob"]).allowed
        assert enforcer.enforce("DELETE", "/albums/1", token=tokens["bob"]).status == 403
    assert len(calls) == asked


def test_rpt_with_the_permission_is_allowed_locally(
    make_enforcer: Callable[..., PolicyEnforcer],
    authz: AuthzClient,
    tokens: dict[str, str],
    calls: list[str],
) -> None:
    enforcer = make_enforcer()
    enforcer.load_paths()
    rpt = authz.rpt(tokens["alice"], permissions=["Admin Resource#admin:access"]).access_token
    before = len(calls)
    decision = enforcer.enforce("GET", "/admin/users", token=rpt)
    assert (decision.allowed, decision.reason) == (True, "the RPT grants it")
    assert len(calls) == before


def test_lazy_load_paths_resolve_resources_by_matching_uri(
    authz: AuthzClient, tokens: dict[str, str], calls: list[str]
) -> None:
    enforcer = PolicyEnforcer(authz, {"lazy-load-paths": True})
    assert enforcer.enforce("GET", "/admin/users", token=tokens["alice"]).allowed
    assert enforcer.enforce("GET", "/admin/users", token=tokens["bob"]).status == 403
    resolved = enforcer.resolve("/admin/users")
    assert resolved is not None
    assert resolved.name == "Admin Resource"
    lookups = [c for c in calls if "'matchingUri': 'true'" in c]
    assert len(lookups) == 1  # the path cache answers the second time


def test_paths_load_from_keycloak_when_none_are_configured(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    enforcer = PolicyEnforcer(authz, {})
    assert enforcer.enforce("GET", "/public/x", token=tokens["carol"]).allowed
    assert enforcer.enforce("GET", "/admin/x", token=tokens["carol"]).status == 403


def test_http_method_as_scope(authz: AuthzClient, tokens: dict[str, str]) -> None:
    # The Admin Resource has no "GET" scope: Keycloak refuses the request (invalid_scope).
    enforcer = PolicyEnforcer(
        authz,
        {"http-method-as-scope": True, "paths": [{"path": "/admin/*", "name": "Admin Resource"}]},
    )
    decision = enforcer.enforce("GET", "/admin/x", token=tokens["alice"])
    assert decision.status == 403


def test_claim_information_point_pushes_request_data(
    make_enforcer: Callable[..., PolicyEnforcer], tokens: dict[str, str]
) -> None:
    cip = {
        "claims": {
            "tenant": "{request.parameter['tenant']}",
            "agent": "{request.header['X-Agent']}",
        }
    }
    public = {"path": "/public/*", "name": "Public Resource", "claim-information-point": cip}
    enforcer = make_enforcer(paths=[public])
    decision = enforcer.enforce(
        "GET",
        "/public/x?tenant=acme",
        token=tokens["carol"],
        params={"tenant": "acme"},
        headers={"x-agent": "tests"},
    )
    assert decision.allowed
    assert decision.permissions[0].claims == {"tenant": ["acme"], "agent": ["tests"]}


def test_unknown_resource_is_a_configuration_error(authz: AuthzClient) -> None:
    enforcer = PolicyEnforcer(authz, {"paths": [{"path": "/x/*", "name": "No Such Resource"}]})
    with pytest.raises(ConfigError, match="No Such Resource"):
        enforcer.load_paths()


@pytest.fixture
def alice_album(
    keycloak_admin: KeycloakAdmin, keycloak: KeycloakRealm, authz: AuthzClient
) -> Iterator[Resource]:
    """An owner-managed album of alice's, created through the admin API (see test_uma)."""
    unique = uuid.uuid4().hex[:10]
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
    authz.resources.delete(album.id)  # its tickets and policies go with it


def test_uma_sharing_flow(
    authz: AuthzClient, alice_album: Resource, tokens: dict[str, str], keycloak: KeycloakRealm
) -> None:
    enforcer = PolicyEnforcer(
        authz, {"user-managed-access": {}, "lazy-load-paths": True, "paths": [ALBUMS]}
    )
    path = alice_album.uris[0]

    # 1. bob asks for alice's album with a plain access token: 401 and a permission ticket.
    challenge = enforcer.enforce("GET", path, token=tokens["bob"])
    assert challenge.status == 401
    assert challenge.ticket is not None
    assert challenge.path is not None
    assert challenge.path.id == alice_album.id  # the instance, not the typed Album Resource
    assert challenge.headers["WWW-Authenticate"] == (
        f'UMA realm="kc-test", as_uri="{keycloak.issuer}", ticket="{challenge.ticket}"'
    )

    # 2. bob's client trades the ticket; nothing is granted yet, so alice is asked.
    with pytest.raises(AccessDenied) as refused:
        authz.rpt(tokens["bob"], ticket=challenge.ticket, submit_request=True)
    assert refused.value.request_submitted

    # 3. alice (the owner) approves the pending request through the Protection API.
    pending = authz.tickets.find(resource_id=alice_album.id, granted=False, return_names=True)
    assert [(t.requester_name, t.scope_name) for t in pending] == [("bob", "album:view")]
    authz.tickets.approve(pending[0])

    # 4. bob now gets an RPT with the ticket, and the enforcer lets it through.
    rpt = authz.rpt(tokens["bob"], ticket=challenge.ticket).access_token
    allowed = enforcer.enforce("GET", path, token=rpt)
    assert allowed.allowed
    assert [(p.resource_id, p.scopes) for p in allowed.permissions] == [
        (alice_album.id, frozenset({"album:view"}))
    ]
    # Only what alice shared: deleting still needs another ticket.
    assert enforcer.enforce("DELETE", path, token=rpt).status == 401
