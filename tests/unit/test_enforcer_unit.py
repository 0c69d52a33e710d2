"""Policy enforcer without Keycloak: configuration, path matching, claims, UMA value objects.

Every decision Keycloak takes part in is tested against the real server, in
``tests/integration/test_enforcer.py`` and ``tests/integration/test_enforcer_modes.py``. Here only
the decisions the enforcer makes on its own, with no call to Keycloak at all.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from kc_core import Client
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
from kc_core.errors import ConfigError, KeycloakUnreachable
from kc_core.uma import (
    AuthzClient,
    PermissionRequest,
    Resource,
    UmaPolicy,
    encode_claims,
)

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


# -- decisions made without Keycloak -----------------------------------------------------------
# The enforcer's client points at a closed port: a call to Keycloak would raise
# KeycloakUnreachable, so a test that passes proves none was made.


@pytest.fixture
def offline_authz(
    make_config: Callable[..., Config], closed_port_url: str
) -> Iterator[AuthzClient]:
    client = Client(make_config(closed_port_url, client_id="api"))
    yield AuthzClient(client)
    client.close()


@pytest.fixture
def make_enforcer(offline_authz: AuthzClient) -> Callable[[Mapping[str, Any]], PolicyEnforcer]:
    def make(config: Mapping[str, Any]) -> PolicyEnforcer:
        return PolicyEnforcer(offline_authz, config)

    return make


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "user-1", "exp": time.time() + 300, **extra}


def rpt_claims(*scopes: str) -> dict[str, Any]:
    return claims(authorization={"permissions": [{"rsid": "albums", "scopes": list(scopes)}]})


def test_a_decision_keycloak_must_make_fails_when_it_is_unreachable(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    # The premise of the tests below: asking Keycloak here cannot go unnoticed.
    enforcer = make_enforcer({"paths": [ALBUMS]})
    with pytest.raises(KeycloakUnreachable):
        enforcer.enforce("GET", "/albums/1", token="t", claims=claims())


def test_unmatched_path_is_denied_when_enforcing_and_allowed_when_permissive(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    enforcing = make_enforcer({"paths": [ALBUMS]})
    assert enforcing.enforce("GET", "/elsewhere", token="t", claims=claims()).status == 403
    permissive = make_enforcer({"enforcement-mode": "PERMISSIVE", "paths": [ALBUMS]})
    assert permissive.enforce("GET", "/elsewhere", token="t", claims=claims()).allowed


def test_disabled_path_and_disabled_enforcer_never_call_keycloak(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    health = {"path": "/health", "enforcement-mode": "DISABLED"}
    enforcer = make_enforcer({"paths": [ALBUMS, health]})
    assert enforcer.enforce("GET", "/health", token=None).allowed
    assert enforcer.enforce("GET", "/health", token="t", claims=claims()).allowed
    off = make_enforcer({"enforcement-mode": "DISABLED", "paths": [ALBUMS]})
    assert off.enforce("DELETE", "/albums/1", token=None).allowed
    assert off.enforce("DELETE", "/albums/1", token="t", claims=claims()).allowed


def test_path_traversal_cannot_reach_a_protected_path(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    # Matched as written, the path would fall under the disabled /public/* and be allowed.
    public = {"path": "/public/*", "enforcement-mode": "DISABLED"}
    admin = {"path": "/admin/*", "id": "admin"}
    enforcer = make_enforcer({"paths": [public, admin]})
    decision = enforcer.enforce("GET", "/public/../admin/x")
    assert decision.status == 401
    assert decision.path is not None
    assert decision.path.path == "/admin/*"


def test_missing_token_gets_a_bearer_challenge(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    enforcer = make_enforcer({"paths": [ALBUMS]})
    decision = enforcer.enforce("GET", "/albums/1")
    assert decision.status == 401
    assert decision.headers["WWW-Authenticate"] == 'Bearer realm="shop"'


def test_an_rpt_is_honoured_without_calling_keycloak(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    enforcer = make_enforcer({"user-managed-access": {}, "paths": [ALBUMS]})
    decision = enforcer.enforce("GET", "/albums/1", token="rpt", claims=rpt_claims("album:view"))
    assert decision.allowed
    assert decision.reason == "the RPT grants it"


def test_an_rpt_is_checked_with_the_scopes_enforcement_mode(
    make_enforcer: Callable[[Mapping[str, Any]], PolicyEnforcer],
) -> None:
    enforcer = make_enforcer({"user-managed-access": {}, "paths": [ALBUMS]})
    view_only = rpt_claims("album:view")
    # PATCH needs ANY of view/delete, PUT's scopes are not enforced: the RPT suffices.
    assert enforcer.enforce("PATCH", "/albums/1", token="rpt", claims=view_only).allowed
    assert enforcer.enforce("PUT", "/albums/1", token="rpt", claims=view_only).allowed
    # DELETE needs album:delete (ALL): the RPT does not suffice, so a ticket is requested.
    with pytest.raises(KeycloakUnreachable):
        enforcer.enforce("DELETE", "/albums/1", token="rpt", claims=view_only)


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
