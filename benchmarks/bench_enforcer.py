"""Cost of an enforced request whose decision is cached, against token validation alone.

Run: ``python benchmarks/bench_enforcer.py``. With ``KEYCLOAK_URL`` set (the test realm
``kc-test`` loaded), the token is a real one of user bob and the first decision comes from
Keycloak; otherwise the token is minted locally and the decision cache is filled by a local
stand-in for Keycloak. The output says which.

Both timings use the same token string, as an adapter does: it validates the bearer token
(``TokenValidator.validate``, a cache hit after the first request) and then asks the enforcer.
Calls to Keycloak are counted around the timed loops: they must stay at 0.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

from _support import new_rsa_key, per_call, public_jwk, sign_rs256

from kc_core import Client, Config, TokenValidator
from kc_core.enforcer import PolicyEnforcer
from kc_core.uma import AuthzClient, Permission, PermissionRequest

PATHS: list[dict[str, Any]] = [
    {
        "path": "/albums/*",
        "name": "Album Resource",
        "id": None,
        "methods": [
            {"method": "GET", "scopes": ["album:view"]},
            {"method": "DELETE", "scopes": ["album:delete"]},
        ],
    },
    {"path": "/admin/*", "name": "Admin Resource"},
    {"path": "/public/*", "name": "Public Resource"},
]
LOCAL_ISSUER = "http://127.0.0.1:8080/realms/bench"


class LocalKeycloak(AuthzClient):
    """Answers the enforcer's permission requests locally, counting each one."""

    def __init__(self) -> None:
        self.calls = 0
        self.client = SimpleNamespace(  # type: ignore[assignment]
            config=SimpleNamespace(realm="bench", client_id="kc-authz"),
            discovery=SimpleNamespace(uma=lambda: {"issuer": LOCAL_ISSUER}),
        )

    def grant(self, access_token: str | None = None, **kwargs: Any) -> tuple[Permission, ...]:
        self.calls += 1
        request: PermissionRequest = kwargs["permissions"][0]
        return (Permission(request.resource_id, "Album Resource", frozenset(request.scopes)),)


def local_setup() -> tuple[str, TokenValidator, PolicyEnforcer, Callable[[], int]]:
    key = new_rsa_key()
    jwks = {"keys": [public_jwk(key.public_key(), "k1")]}
    now = int(time.time())
    claims = {
        "iss": LOCAL_ISSUER, "sub": "bob", "aud": ["kc-authz", "account"], "azp": "kc-authz",
        "typ": "Bearer", "exp": now + 300, "iat": now, "preferred_username": "bob",
        "realm_access": {"roles": ["user", "offline_access", "uma_authorization"]},
    }  # fmt: skip
    token = sign_rs256(key, "k1", claims)
    validator = TokenValidator(jwks, issuer=LOCAL_ISSUER, audience="kc-authz")
    keycloak = LocalKeycloak()
    paths = [dict(p, id=f"id-{p['name']}") for p in PATHS]
    enforcer = PolicyEnforcer(keycloak, {"paths": paths})
    return token, validator, enforcer, lambda: keycloak.calls


def keycloak_setup(url: str) -> tuple[str, TokenValidator, PolicyEnforcer, Callable[[], int]]:
    config = Config(
        server_url=url,
        realm="kc-test",
        client_id="kc-authz",
        client_secret=os.environ.get("KC_AUTHZ_SECRET", "kc-authz-secret"),
        verify_token_audience=False,
    )
    client = Client(config)
    counted = [0]
    send = client.http.request

    def counting(method: str, target: str, **kwargs: Any) -> Any:
        counted[0] += 1
        return send(method, target, **kwargs)

    client.http.request = counting  # type: ignore[method-assign,assignment]
    token = client.password_grant("bob", "bob-password").access_token
    enforcer = PolicyEnforcer(client, {"paths": [{k: v for k, v in p.items() if v} for p in PATHS]})
    return token, client.validator, enforcer, lambda: counted[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()

    url = os.environ.get("KEYCLOAK_URL")
    if url:
        source = f"a real Keycloak token (user bob) from {url}; first decision from Keycloak"
        token, validator, enforcer, calls = keycloak_setup(url)
    else:
        source = "a locally minted RS256 token; decision cache filled by a local stand-in"
        token, validator, enforcer, calls = local_setup()

    claims: Mapping[str, Any] = validator.validate(token)
    first = enforcer.enforce("GET", "/albums/7", token=token, claims=claims)
    assert first.allowed, first
    warm_calls = calls()

    def validate() -> object:
        return validator.validate(token)

    def enforce() -> object:
        return enforcer.enforce("GET", "/albums/7", token, claims)

    def enforce_keywords() -> object:
        return enforcer.enforce("GET", "/albums/7", token=token, claims=claims)

    def validate_and_enforce() -> object:
        return enforcer.enforce("GET", "/albums/7", token, validator.validate(token))

    validate_s = per_call(validate, args.number, args.repeat)
    enforce_s = per_call(enforce, args.number, args.repeat)
    keywords_s = per_call(enforce_keywords, args.number, args.repeat)
    both_s = per_call(validate_and_enforce, args.number, args.repeat)
    timed_calls = calls() - warm_calls

    print(f"token: {source}")
    print(f"calls to Keycloak before timing (login, discovery, paths, 1st decision): {warm_calls}")
    print(f"calls to Keycloak during {4 * args.number * args.repeat} timed requests: {timed_calls}")
    print(f"TokenValidator.validate(token), cached          {validate_s * 1e9:6.0f} ns")
    print(f"PolicyEnforcer.enforce(m, p, token, claims)     {enforce_s * 1e9:6.0f} ns")
    print(f"  the same with token=, claims= keywords        {keywords_s * 1e9:6.0f} ns")
    print(f"validate + enforce (a whole request)            {both_s * 1e9:6.0f} ns")
    print(f"ratio enforce / validate:            {enforce_s / validate_s:5.2f}  (target < 1.5)")
    print(f"ratio enforce (keywords) / validate: {keywords_s / validate_s:5.2f}")
    print(f"ratio (validate + enforce) / validate: {both_s / validate_s:5.2f}")
    if timed_calls:
        raise SystemExit("a cached decision called Keycloak")


if __name__ == "__main__":
    main()
