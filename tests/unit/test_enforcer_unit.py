"""Policy enforcer without Keycloak: configuration, path matching, claims, decisions, caching."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from kc_core.config import Config
from kc_core.enforcer import (
    EnforcementMode,
    EnforcerConfig,
    MethodConfig,
    PathConfig,
    PathMatcher,
    PolicyEnforcer,
    RequestContext,
    ScopesEnforcementMode,
    normalize_path,
    resolve_claims,
)
from kc_core.errors import ConfigError
from kc_core.uma import (
    AccessDenied,
    AuthzClient,
    Permission,
    PermissionRequest,
    Resource,
    UmaPolicy,
    encode_claims,
)

ISSUER = "https://sso.example.test/realms/shop"


class FakeAuthz(AuthzClient):
    """Answers like Keycloak from canned permissions, and counts every call."""

    def __init__(self, granted: Mapping[str, Iterable[str]] | None = None) -> None:
        self.granted = {k: frozenset(v) for k, v in (granted or {}).items()}
        self.calls: list[tuple[str, Any]] = []
        self.client = SimpleNamespace(  # type: ignore[assignment]
            config=SimpleNamespace(realm="shop", client_id="api"),
            discovery=SimpleNamespace(uma=lambda: {"issuer": ISSUER}),
        )

    def grant(self, access_token: str | None = None, **kwargs: Any) -> tuple[Permission, ...]:
        self.calls.append(("grant", kwargs))
        result = []
        for request in kwargs["permissions"]:
            scopes = self.granted.get(request.resource_id)
            if scopes is None:
                continue
            wanted = set(request.scopes) or set(scopes)
            result.append(Permission(request.resource_id, request.resource_id, scopes & wanted))
        if not result:
            raise AccessDenied(403, "access_denied", "not_authorized")
        return tuple(result)

    def permission_ticket(self, requests: Iterable[PermissionRequest]) -> str:
        self.calls.append(("ticket", list(requests)))
        return "ticket-1"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ALBUMS = {
    "path": "/albums/*",
    "id": "albums",
    "methods": [
        {"method": "GET", "scopes": ["album:view"]},
        {"method": "DELETE", "scopes": ["album:delete"]},
        {
            "method": "PATCH",
            "scopes": ["album:view", "album:delete"],
            "scopes-enforcement-mode": "ANY",
        },
        {"method": "PUT", "scopes": ["album:delete"], "scopes-enforcement-mode": "DISABLED"},
    ],
}


def make_enforcer(
    config: Mapping[str, Any],
    granted: Mapping[str, Iterable[str]] | None = None,
    clock: Clock | None = None,
) -> tuple[PolicyEnforcer, FakeAuthz]:
    authz = FakeAuthz(granted)
    return PolicyEnforcer(authz, config, clock=clock or Clock()), authz


def claims(exp: float = 1_000_300.0, **extra: Any) -> dict[str, Any]:
    return {"sub": "user-1", "exp": exp, **extra}


# -- configuration ------------------------------------------------------------------------


def test_config_parses_keycloak_policy_enforcer_json() -> None:
    config = EnforcerConfig.from_json(
        {
            "enforcement-mode": "permissive",
            "lazy-load-paths": True,
            "http-method-as-scope": True,
            "path-cache": {"lifespan": 5000, "max-entries": 7},
            "on-deny-redirect-to": "/denied",
            "user-managed-access": {},
            "claim-information-point": {"claims": {"tenant": "{request.header['X-Tenant']}"}},
            "paths": [ALBUMS, {"path": "/health", "enforcement-mode": "DISABLED"}],
        }
    )
    assert config.enforcement_mode is EnforcementMode.PERMISSIVE
    assert config.lazy_load_paths
    assert config.http_method_as_scope
    assert config.user_managed_access
    assert config.path_cache.lifespan == 5.0
    assert config.path_cache.max_entries == 7
    assert config.on_deny_redirect_to == "/denied"
    assert config.claim_information_point == {"tenant": "{request.header['X-Tenant']}"}
    albums, health = config.paths
    assert albums.methods[0] == MethodConfig("GET", ("album:view",), ScopesEnforcementMode.ALL)
    assert albums.methods[2].scopes_enforcement_mode is ScopesEnforcementMode.ANY
    assert health.enforcement_mode is EnforcementMode.DISABLED


def test_config_defaults_follow_keycloak() -> None:
    config = EnforcerConfig.from_json({})
    assert config.enforcement_mode is EnforcementMode.ENFORCING
    assert config.path_cache.lifespan == 30.0
    assert config.path_cache.max_entries == 1000
    assert not config.lazy_load_paths
    assert not config.user_managed_access


def test_config_comes_from_keycloak_json(tmp_path: Any) -> None:
    settings = tmp_path / "keycloak.json"
    settings.write_text(
        json.dumps(
            {
                "realm": "shop",
                "auth-server-url": "https://sso.example.test",
                "resource": "api",
                "credentials": {"secret": "s"},
                "policy-enforcer": {"paths": [ALBUMS]},
            }
        )
    )
    config = EnforcerConfig.from_config(Config.from_file(settings))
    assert config.paths[0].path == "/albums/*"


def test_config_without_policy_enforcer_is_refused() -> None:
    plain = Config(server_url="https://sso.example.test", realm="shop", client_id="api")
    with pytest.raises(ConfigError, match="no policy enforcer"):
        EnforcerConfig.from_config(plain)


@pytest.mark.parametrize(
    "body",
    [
        {"enforcement-mode": "SOMETIMES"},
        {"paths": [{"methods": []}]},
        {"paths": [{"path": "/a", "methods": [{"scopes": ["x"]}]}]},
        {"paths": [{"path": "/a", "methods": [{"method": "GET", "scopes-enforcement-mode": "X"}]}]},
        {"claim-information-point": {"http": {"url": "https://claims.example.test"}}},
        {"path-cache": {"lifespan": "soon"}},
    ],
)
def test_config_rejects_invalid_settings(body: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EnforcerConfig.from_json(body)


# -- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/albums/1?x=1", "/albums/1"),
        ("//albums//1", "/albums/1"),
        ("/public/../admin", "/admin"),
        ("/./a/./b/", "/a/b/"),
        ("/../..", "/"),
        ("", "/"),
    ],
)
def test_normalize_path(raw: str, normalized: str) -> None:
    assert normalize_path(raw) == normalized


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/albums", "/albums/*"),
        ("/albums/", "/albums/*"),
        ("/albums/7/x/y", "/albums/*"),
        ("/albums/7", "/albums/{id}"),
        ("/albums/7/photos", "/albums/{id}/photos"),
        ("/albums/7/photos/3", "/albums/{id}/photos/*"),
        ("/albums/shared", "/albums/shared"),
        ("/static/site.css", "/static/*.css"),
        ("/static/site.js", "/*"),
        ("/albumsX", "/*"),
    ],
)
def test_matcher_prefers_exact_then_most_specific(path: str, expected: str) -> None:
    matcher = PathMatcher(
        PathConfig(p)
        for p in (
            "/*",
            "/albums/*",
            "/albums/{id}",
            "/albums/{id}/photos/*",
            "/albums/{id}/photos",
            "/albums/shared",
            "/static/*.css",
        )
    )
    found = matcher.match(path)
    assert found is not None
    assert found.path == expected


def test_matcher_without_catch_all_matches_nothing_else() -> None:
    matcher = PathMatcher([PathConfig("/albums/{id}"), PathConfig("/admin")])
    assert matcher.match("/albums/1/extra") is None
    assert matcher.match("/administrator") is None
    assert matcher.match("/admin") is not None


def test_method_config_fallbacks() -> None:
    path = PathConfig("/a", scopes=("read", "write"), methods=(MethodConfig("GET", ("read",)),))
    assert path.method_config("GET", http_method_as_scope=False).scopes == ("read",)
    fallback = path.method_config("POST", http_method_as_scope=False)
    assert fallback.scopes == ("read", "write")
    assert fallback.scopes_enforcement_mode is ScopesEnforcementMode.ANY
    assert path.method_config("POST", http_method_as_scope=True).scopes == ("POST",)


# -- claim information point ----------------------------------------------------------------


def test_claims_come_from_parameters_headers_and_token() -> None:
    request = RequestContext(
        "GET",
        "/albums/1",
        params={"a": ["1", "2"], "b": "x"},
        headers={"X-Tenant": "acme"},
        cookies={"c": "cookie"},
        remote_addr="10.0.0.1",
        token_claims={"realm_access": {"roles": ["user", "admin"]}},
    )
    resolved = resolve_claims(
        {
            "a": "{request.parameter['a']}",
            "tenant": "{request.header['x-tenant']}",
            "mixed": ["{request.parameter['b']}", "static"],
            "where": "from {request.remoteAddr} via {request.method}",
            "cookie": "{request.cookie['c']}",
            "role": "{keycloak.access_token['/realm_access/roles/1']}",
            "missing": "{request.parameter['nope']}",
            "path": "{request.relativePath}",
        },
        request,
    )
    assert resolved == {
        "a": ("1", "2"),
        "tenant": ("acme",),
        "mixed": ("x", "static"),
        "where": ("from 10.0.0.1 via GET",),
        "cookie": ("cookie",),
        "role": ("admin",),
        "path": ("/albums/1",),
    }


def test_unknown_claim_expression_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        resolve_claims({"x": "{request.body}"}, RequestContext("GET", "/"))


# -- decisions ------------------------------------------------------------------------------


def test_allows_with_required_scope_and_denies_without() -> None:
    enforcer, _ = make_enforcer({"paths": [ALBUMS]}, {"albums": {"album:view"}})
    allowed = enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    assert allowed.allowed
    assert allowed.status == 200
    assert [p.scopes for p in allowed.permissions] == [frozenset({"album:view"})]
    denied = enforcer.enforce("DELETE", "/albums/1", token="t", claims=claims())
    assert not denied
    assert denied.status == 403


def test_scopes_enforcement_any_all_and_disabled() -> None:
    enforcer, _ = make_enforcer({"paths": [ALBUMS]}, {"albums": {"album:view"}})
    assert enforcer.enforce("PATCH", "/albums/1", token="t", claims=claims()).allowed  # ANY
    assert enforcer.enforce("PUT", "/albums/1", token="t", claims=claims()).allowed  # DISABLED


def test_all_needs_every_scope() -> None:
    both = {"path": "/docs/*", "id": "docs", "methods": [{"method": "GET", "scopes": ["r", "w"]}]}
    enforcer, _ = make_enforcer({"paths": [both]}, {"docs": {"r"}})
    assert enforcer.enforce("GET", "/docs/1", token="t", claims=claims()).status == 403


def test_unmatched_path_is_denied_when_enforcing_and_allowed_when_permissive() -> None:
    enforcing, authz = make_enforcer({"paths": [ALBUMS]})
    assert enforcing.enforce("GET", "/elsewhere", token="t", claims=claims()).status == 403
    permissive, _ = make_enforcer({"enforcement-mode": "PERMISSIVE", "paths": [ALBUMS]})
    assert permissive.enforce("GET", "/elsewhere", token="t", claims=claims()).allowed
    assert authz.calls == []


def test_permissive_path_allows_when_no_permission_exists() -> None:
    path = {**ALBUMS, "enforcement-mode": "PERMISSIVE"}
    enforcer, _ = make_enforcer({"paths": [path]}, {})
    decision = enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    assert decision.allowed
    assert "permissive" in decision.reason


def test_disabled_path_and_disabled_enforcer_never_call_keycloak() -> None:
    health = {"path": "/health", "enforcement-mode": "DISABLED"}
    enforcer, authz = make_enforcer({"paths": [ALBUMS, health]})
    assert enforcer.enforce("GET", "/health", token=None).allowed
    off, _ = make_enforcer({"enforcement-mode": "DISABLED", "paths": [ALBUMS]})
    assert off.enforce("DELETE", "/albums/1", token=None).allowed
    assert authz.calls == []


def test_path_traversal_cannot_reach_a_protected_path() -> None:
    public = {"path": "/public/*", "enforcement-mode": "DISABLED"}
    admin = {"path": "/admin/*", "id": "admin"}
    enforcer, _ = make_enforcer({"paths": [public, admin]}, {})
    assert enforcer.enforce("GET", "/public/../admin/x", token="t", claims=claims()).status == 403


def test_missing_token_gets_a_bearer_challenge() -> None:
    enforcer, _ = make_enforcer({"paths": [ALBUMS]})
    decision = enforcer.enforce("GET", "/albums/1")
    assert decision.status == 401
    assert decision.headers["WWW-Authenticate"] == 'Bearer realm="shop"'


def test_user_managed_access_answers_with_a_uma_ticket() -> None:
    enforcer, authz = make_enforcer({"user-managed-access": {}, "paths": [ALBUMS]})
    decision = enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    assert decision.status == 401
    assert decision.ticket == "ticket-1"
    assert decision.headers["WWW-Authenticate"] == (
        f'UMA realm="shop", as_uri="{ISSUER}", ticket="ticket-1"'
    )
    assert authz.calls == [("ticket", [PermissionRequest("albums", ("album:view",))])]


def test_an_rpt_is_honoured_without_calling_keycloak() -> None:
    enforcer, authz = make_enforcer({"user-managed-access": {}, "paths": [ALBUMS]})
    rpt = claims(authorization={"permissions": [{"rsid": "albums", "scopes": ["album:view"]}]})
    decision = enforcer.enforce("GET", "/albums/1", token="rpt", claims=rpt)
    assert decision.allowed
    assert decision.reason == "the RPT grants it"
    assert authz.calls == []


def test_denial_redirects_when_on_deny_redirect_to_is_set() -> None:
    enforcer, _ = make_enforcer({"on-deny-redirect-to": "/denied", "paths": [ALBUMS]}, {})
    decision = enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    assert decision.status == 302
    assert decision.redirect_to == "/denied"
    assert decision.headers == {"Location": "/denied"}


def test_pushed_claims_reach_keycloak_and_key_the_cache() -> None:
    path = {**ALBUMS, "claim-information-point": {"claims": {"a": "{request.parameter['a']}"}}}
    enforcer, authz = make_enforcer({"paths": [path]}, {"albums": {"album:view"}})
    enforcer.enforce("GET", "/albums/1", token="t", claims=claims(), params={"a": "1"})
    enforcer.enforce("GET", "/albums/1", token="t", claims=claims(), params={"a": "1"})
    enforcer.enforce("GET", "/albums/1", token="t", claims=claims(), params={"a": "2"})
    assert [call[1]["claims"] for call in authz.calls] == [{"a": ("1",)}, {"a": ("2",)}]


# -- caching ----------------------------------------------------------------------------------


def test_cached_decision_makes_no_call_to_keycloak() -> None:
    enforcer, authz = make_enforcer({"paths": [ALBUMS]}, {"albums": {"album:view"}})
    first = enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    for _ in range(5):
        assert enforcer.enforce("GET", "/albums/1", token="t", claims=claims()) is first
    # Another path of the same resource and scopes reuses the resource-level decision.
    assert enforcer.enforce("GET", "/albums/2", token="t", claims=claims()).allowed
    assert len(authz.calls) == 1


def test_cached_decision_expires_with_the_token() -> None:
    clock = Clock()
    enforcer, authz = make_enforcer({"paths": [ALBUMS]}, {"albums": {"album:view"}}, clock)
    token_claims = claims(exp=clock.now + 5)
    enforcer.enforce("GET", "/albums/1", token="t", claims=token_claims)
    clock.now += 4
    enforcer.enforce("GET", "/albums/1", token="t", claims=token_claims)
    assert len(authz.calls) == 1
    clock.now += 2  # past exp, although the decision lifespan (60 s) is not over
    enforcer.enforce("GET", "/albums/1", token="t", claims=token_claims)
    assert len(authz.calls) == 2


def test_decision_cache_is_bounded() -> None:
    config = {"paths": [ALBUMS], "decision-cache": {"max-entries": 2}}
    enforcer, authz = make_enforcer(config, {"albums": {"album:view"}})
    for token in ("t1", "t2", "t3", "t1"):
        enforcer.enforce("GET", "/albums/1", token=token, claims=claims())
    assert len(authz.calls) == 4  # t1 was evicted by t3


def test_paths_sharing_a_resource_keep_their_own_decisions() -> None:
    reports = {"path": "/reports/*", "id": "albums", "enforcement-mode": "PERMISSIVE"}
    albums = {"path": "/albums/*", "id": "albums"}
    enforcer, _ = make_enforcer({"paths": [reports, albums]}, {})
    assert enforcer.enforce("GET", "/reports/1", token="t", claims=claims()).allowed
    assert enforcer.enforce("GET", "/albums/1", token="t", claims=claims()).status == 403


def test_tickets_are_not_cached() -> None:
    enforcer, authz = make_enforcer({"user-managed-access": {}, "paths": [ALBUMS]})
    enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    enforcer.enforce("GET", "/albums/1", token="t", claims=claims())
    assert len(authz.calls) == 2


# -- UMA value objects ----------------------------------------------------------------------


def test_resource_round_trips_keycloak_representation() -> None:
    body = {
        "_id": "r1",
        "name": "Album",
        "type": "urn:x:album",
        "uris": ["/albums/1"],
        "resource_scopes": [{"id": "s", "name": "album:view"}],
        "owner": {"id": "u1", "name": "alice"},
        "ownerManagedAccess": True,
        "attributes": {"color": ["red"]},
        "displayName": "An album",
        "icon_uri": "https://icons.example.test/a.png",
    }
    resource = Resource.from_json(body)
    assert resource.scopes == ("album:view",)
    assert resource.owner == "u1"
    assert resource.owner_name == "alice"
    assert resource.attributes == {"color": ("red",)}
    assert resource.to_json()["resource_scopes"] == ["album:view"]
    assert resource.to_json()["owner"] == "u1"


def test_permission_request_and_pushed_claims_encoding() -> None:
    request = PermissionRequest("r1", ("a", "b"), {"tenant": "acme"})
    assert request.as_parameter() == "r1#a,b"
    assert PermissionRequest("r1").as_parameter() == "r1"
    assert request.to_json() == {
        "resource_id": "r1",
        "resource_scopes": ["a", "b"],
        "claims": {"tenant": ["acme"]},
    }
    decoded = json.loads(base64.urlsafe_b64decode(encode_claims({"tenant": "acme"})))
    assert decoded == {"tenant": ["acme"]}


def test_uma_policy_leaves_out_empty_fields() -> None:
    policy = UmaPolicy(name="share", scopes=("album:view",), users=("bob",))
    assert policy.to_json() == {"name": "share", "scopes": ["album:view"], "users": ["bob"]}
