"""Policy enforcer modes against the real Keycloak: scopes enforcement, caching, UMA tickets.

Complements ``test_enforcer.py``. Each test counts what the enforcer asks Keycloak by recording
the requests its client's HTTP session sends.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from kc_core import Client
from kc_core.enforcer import PolicyEnforcer
from kc_core.testing.server import KeycloakRealm
from kc_core.uma import UMA_GRANT_TYPE, AuthzClient

pytestmark = pytest.mark.integration


def albums(patch_mode: str = "ANY", **extra: Any) -> dict[str, Any]:
    """The Album Resource's path: PATCH needs ``patch_mode`` of album:view and album:delete."""
    return {
        "path": "/albums/*",
        "name": "Album Resource",
        "methods": [
            {"method": "GET", "scopes": ["album:view"]},
            {"method": "DELETE", "scopes": ["album:delete"]},
            {
                "method": "PATCH",
                "scopes": ["album:view", "album:delete"],
                "scopes-enforcement-mode": patch_mode,
            },
            {"method": "PUT", "scopes": ["album:delete"], "scopes-enforcement-mode": "DISABLED"},
        ],
        **extra,
    }


class Clock:
    """A clock the test moves by hand, for the enforcer's ``clock=``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class KeycloakCalls:
    """The requests a client sent to Keycloak: (method, URL, keyword arguments)."""

    permission_endpoint: str
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def grants(self) -> list[dict[str, list[str]]]:
        """The forms of the UMA grants (the enforcer's permission requests)."""
        forms = []
        for method, _, kwargs in self.sent:
            form: dict[str, list[str]] = {}
            for name, value in kwargs.get("data") or ():
                form.setdefault(name, []).append(value)
            if method == "POST" and form.get("grant_type") == [UMA_GRANT_TYPE]:
                forms.append(form)
        return forms

    def tickets(self) -> list[Any]:
        """The bodies posted to the permission endpoint (one per permission ticket)."""
        return [
            kwargs.get("json")
            for method, url, kwargs in self.sent
            if method == "POST" and url == self.permission_endpoint
        ]


@pytest.fixture(scope="module")
def tokens(authz_client: Client, keycloak: KeycloakRealm) -> dict[str, str]:
    return {
        name: authz_client.password_grant(name, keycloak.user(name).password).access_token
        for name in ("alice", "bob", "carol")
    }


@pytest.fixture
def calls(
    authz_client: Client, authz: AuthzClient, monkeypatch: pytest.MonkeyPatch
) -> KeycloakCalls:
    """Every request the client sends to Keycloak from now on."""
    recorded = KeycloakCalls(authz_client.discovery.endpoint("permission_endpoint", uma=True))
    send = authz_client.http.session.request

    def recording(method: str, url: str, **kwargs: Any) -> Any:
        recorded.sent.append((method, url, kwargs))
        return send(method, url, **kwargs)

    monkeypatch.setattr(authz_client.http.session, "request", recording)
    return recorded


def enforcer_for(authz: AuthzClient, config: dict[str, Any], **options: Any) -> PolicyEnforcer:
    """An enforcer whose paths are already resolved, so only decisions reach Keycloak."""
    enforcer = PolicyEnforcer(authz, config, **options)
    enforcer.load_paths()
    return enforcer


def decoded_claims(form: dict[str, list[str]]) -> Any:
    (token,) = form["claim_token"]
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


# -- scopes enforcement ---------------------------------------------------------------------


def test_an_allowed_decision_carries_only_the_requested_scope(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    enforcer = enforcer_for(authz, {"paths": [albums()]})
    # alice holds album:view and album:delete; GET asks for album:view alone.
    decision = enforcer.enforce("GET", "/albums/1", token=tokens["alice"])
    assert (decision.allowed, decision.status) == (True, 200)
    assert [(p.resource_name, p.scopes) for p in decision.permissions] == [
        ("Album Resource", frozenset({"album:view"}))
    ]


def test_any_needs_one_of_the_scopes_and_all_needs_every_one(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    # bob holds album:view but not album:delete.
    any_scope = enforcer_for(authz, {"paths": [albums("ANY")]})
    allowed = any_scope.enforce("PATCH", "/albums/1", token=tokens["bob"])
    assert (allowed.allowed, allowed.status) == (True, 200)
    assert [p.scopes for p in allowed.permissions] == [frozenset({"album:view"})]
    assert any_scope.enforce("PATCH", "/albums/1", token=tokens["carol"]).status == 403

    all_scopes = enforcer_for(authz, {"paths": [albums("ALL")]})
    denied = all_scopes.enforce("PATCH", "/albums/1", token=tokens["bob"])
    assert (denied.allowed, denied.status) == (False, 403)
    assert denied.reason == "Keycloak does not grant the required scopes"
    assert [p.scopes for p in denied.permissions] == [frozenset({"album:view"})]
    alice = all_scopes.enforce("PATCH", "/albums/1", token=tokens["alice"])
    assert alice.allowed
    assert [p.scopes for p in alice.permissions] == [frozenset({"album:view", "album:delete"})]


def test_disabled_scopes_enforcement_allows_without_the_scope(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    enforcer = enforcer_for(authz, {"paths": [albums()]})
    # PUT needs album:delete, which bob lacks (DELETE is refused), but its scopes are not enforced.
    assert enforcer.enforce("DELETE", "/albums/1", token=tokens["bob"]).status == 403
    decision = enforcer.enforce("PUT", "/albums/1", token=tokens["bob"])
    assert (decision.allowed, decision.status) == (True, 200)
    assert decision.reason == "scopes are not enforced"


# -- enforcement modes ----------------------------------------------------------------------


def test_permissive_path_allows_only_when_no_permission_exists(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    path = albums("ALL", **{"enforcement-mode": "PERMISSIVE"})
    enforcer = enforcer_for(authz, {"paths": [path]})
    # carol has no permission on the Album Resource at all.
    carol = enforcer.enforce("GET", "/albums/1", token=tokens["carol"])
    assert (carol.allowed, carol.status) == (True, 200)
    assert carol.reason == "no permission exists (permissive path)"
    # For PATCH bob is granted album:view, not album:delete: a permission exists, so denied.
    bob = enforcer.enforce("PATCH", "/albums/1", token=tokens["bob"])
    assert (bob.allowed, bob.status) == (False, 403)
    assert [p.scopes for p in bob.permissions] == [frozenset({"album:view"})]


def test_paths_sharing_a_resource_keep_their_own_decisions(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    reports = {"path": "/reports/*", "name": "Album Resource", "enforcement-mode": "PERMISSIVE"}
    enforcing = {"path": "/albums/*", "name": "Album Resource"}
    enforcer = enforcer_for(authz, {"paths": [reports, enforcing]})
    assert enforcer.enforce("GET", "/reports/1", token=tokens["carol"]).allowed
    assert enforcer.enforce("GET", "/albums/1", token=tokens["carol"]).status == 403


def test_path_traversal_cannot_reach_a_protected_path(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    public = {"path": "/public/*", "enforcement-mode": "DISABLED"}
    admin = {"path": "/admin/*", "name": "Admin Resource"}
    enforcer = enforcer_for(authz, {"paths": [public, admin]})
    decision = enforcer.enforce("GET", "/public/../admin/x", token=tokens["bob"])
    assert decision.status == 403
    assert decision.path is not None
    assert decision.path.name == "Admin Resource"


def test_denial_redirects_and_keeps_the_granted_permissions(
    authz: AuthzClient, tokens: dict[str, str]
) -> None:
    config = {"on-deny-redirect-to": "/denied", "paths": [albums("ALL")]}
    enforcer = enforcer_for(authz, config)
    for method, user in (("PATCH", "bob"), ("DELETE", "bob"), ("GET", "carol")):
        decision = enforcer.enforce(method, "/albums/1", token=tokens[user])
        assert not decision.allowed
        assert decision.status == 302
        assert decision.redirect_to == "/denied"
        assert decision.headers == {"Location": "/denied"}
    # bob's PATCH was refused for lack of album:delete; the album:view grant stays visible.
    bob_patch = enforcer.enforce("PATCH", "/albums/1", token=tokens["bob"])
    assert [p.scopes for p in bob_patch.permissions] == [frozenset({"album:view"})]
    allowed = enforcer.enforce("GET", "/albums/1", token=tokens["bob"])
    assert (allowed.status, allowed.redirect_to, dict(allowed.headers)) == (200, None, {})


# -- user-managed access ------------------------------------------------------------------------


def test_user_managed_access_answers_every_request_with_a_new_uma_ticket(
    authz: AuthzClient, tokens: dict[str, str], keycloak: KeycloakRealm, calls: KeycloakCalls
) -> None:
    enforcer = enforcer_for(authz, {"user-managed-access": {}, "paths": [albums()]})
    album = enforcer.resolve("/albums/1")
    assert album is not None
    decisions = [enforcer.enforce("GET", "/albums/1", token=tokens["bob"]) for _ in range(2)]
    for decision in decisions:
        assert (decision.allowed, decision.status) == (False, 401)
        assert decision.ticket
        assert decision.headers["WWW-Authenticate"] == (
            f'UMA realm="kc-test", as_uri="{keycloak.issuer}", ticket="{decision.ticket}"'
        )
    # Tickets are not cached: each request asked for one, and no grant was attempted.
    request = [{"resource_id": album.id, "resource_scopes": ["album:view"]}]
    assert calls.tickets() == [request, request]
    assert calls.grants() == []


# -- pushed claims and caching ------------------------------------------------------------------


def test_pushed_claims_reach_keycloak_and_key_the_cache(
    authz: AuthzClient, tokens: dict[str, str], calls: KeycloakCalls
) -> None:
    cip = {"claims": {"a": "{request.parameter['a']}"}}
    public = {"path": "/public/*", "name": "Public Resource", "claim-information-point": cip}
    enforcer = enforcer_for(authz, {"paths": [public]})
    decisions = [
        enforcer.enforce("GET", "/public/x", token=tokens["carol"], params={"a": value})
        for value in ("1", "1", "2")
    ]
    assert all(d.allowed for d in decisions)
    assert [d.permissions[0].claims for d in decisions] == [
        {"a": ["1"]},
        {"a": ["1"]},
        {"a": ["2"]},
    ]
    assert [decoded_claims(form) for form in calls.grants()] == [{"a": ["1"]}, {"a": ["2"]}]


def test_cached_decision_serves_every_path_of_the_resource(
    authz: AuthzClient, tokens: dict[str, str], calls: KeycloakCalls
) -> None:
    enforcer = enforcer_for(authz, {"paths": [albums()]})
    first = enforcer.enforce("GET", "/albums/1", token=tokens["bob"])
    assert first.allowed
    asked = len(calls.sent)
    for _ in range(5):
        assert enforcer.enforce("GET", "/albums/1", token=tokens["bob"]) is first
    # Another path of the same resource and scopes reuses the resource-level decision.
    assert enforcer.enforce("GET", "/albums/2", token=tokens["bob"]).allowed
    assert len(calls.grants()) == 1
    assert len(calls.sent) == asked


def test_cached_decision_expires_with_the_token(
    authz_client: Client, authz: AuthzClient, tokens: dict[str, str], calls: KeycloakCalls
) -> None:
    claims = authz_client.validate_access_token(tokens["bob"])
    clock = Clock(float(claims["exp"]) - 5)
    enforcer = enforcer_for(authz, {"paths": [albums()]}, clock=clock)
    assert enforcer.enforce("GET", "/albums/1", tokens["bob"], claims).allowed
    clock.now += 4
    assert enforcer.enforce("GET", "/albums/1", tokens["bob"], claims).allowed
    assert len(calls.grants()) == 1
    clock.now += 2  # past exp, although the decision lifespan (60 s) is not over
    assert enforcer.enforce("GET", "/albums/1", tokens["bob"], claims).allowed
    assert len(calls.grants()) == 2


def test_decision_cache_is_bounded(
    authz_client: Client, authz: AuthzClient, keycloak: KeycloakRealm, calls: KeycloakCalls
) -> None:
    password = keycloak.user("bob").password
    t1, t2, t3 = (authz_client.password_grant("bob", password).access_token for _ in range(3))
    config = {"paths": [albums()], "decision-cache": {"max-entries": 2}}
    enforcer = enforcer_for(authz, config)
    for token in (t1, t2, t3, t1):
        assert enforcer.enforce("GET", "/albums/1", token=token).allowed
    assert len(calls.grants()) == 4  # t1 was evicted by t3
    assert enforcer.enforce("GET", "/albums/1", token=t1).allowed
    assert len(calls.grants()) == 4  # and is cached again
