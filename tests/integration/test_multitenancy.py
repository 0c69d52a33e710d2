"""Two tenants in one app process: the realm ``kc-test`` and a second realm created for this
module (a copy of the test realm under another name, deleted afterwards).

A ``kc_select_tenant`` hook picks the tenant per request (host ``127.0.0.1`` → ``a``,
``localhost`` → ``b``, or the ``X-Kc-Tenant`` header); a ``kc_token_store`` hook gives each
tenant its own Redis prefix. The tests show that discovery, signing keys and stores are kept
per tenant, and that a token or a session of one tenant is refused by the other.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from apps.harness import AppProcess

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.redis_server import RedisServer
from kc_core.testing.server import DEFAULT_REALM_FILE, KeycloakRealm

pytestmark = pytest.mark.integration

REALM_A = "kc-test"


@pytest.fixture(scope="module")
def realm_b(keycloak_admin: KeycloakAdmin) -> Iterator[str]:
    """A second realm with the same clients and users as kc-test, but its own keys."""
    name = f"kc-tenant-{secrets.token_hex(3)}"
    representation = json.loads(DEFAULT_REALM_FILE.read_text())
    representation["realm"] = name
    representation["displayName"] = name
    keycloak_admin.post("/admin/realms", json=representation)
    try:
        yield name
    finally:
        keycloak_admin.delete(keycloak_admin.realm_path(name))


@pytest.fixture(scope="module")
def app(
    keycloak: KeycloakRealm,
    redis_server: RedisServer,
    realm_b: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AppProcess]:
    secret = keycloak.client("kc-web").secret
    process = AppProcess(
        [
            "--secret", "app-secret",
            "--redis-url", redis_server.url,
            "--server-url", keycloak.base_url,
            "--tenant", f"a={REALM_A},kc-web,{secret}",
            "--tenant", f"b={realm_b},kc-web,{secret}",
            "--host-tenant", "localhost=b",
        ],
        log_dir=tmp_path_factory.mktemp("tenants"),
    )  # fmt: skip
    process.start()
    yield process
    process.stop()


def url_for(app: AppProcess, tenant: str, path: str) -> str:
    host = "127.0.0.1" if tenant == "a" else "localhost"
    return f"http://{host}:{app.port}{path}"


def password_grant(keycloak: KeycloakRealm, realm: str, username: str) -> str:
    response = requests.post(
        f"{keycloak.base_url}/realms/{realm}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "kc-web",
            "client_secret": keycloak.client("kc-web").secret,
            "username": username,
            "password": keycloak.user(username).password,
            "scope": "openid",
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def bearer_me(app: AppProcess, tenant: str, token: str) -> requests.Response:
    return requests.get(
        url_for(app, tenant, "/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_each_tenant_has_its_own_discovery_keys_and_store(
    keycloak: KeycloakRealm, app: AppProcess, realm_b: str
) -> None:
    a = requests.get(url_for(app, "a", "/tenant"), timeout=10).json()
    b = requests.get(url_for(app, "b", "/tenant"), timeout=10).json()

    assert a["issuer"] == f"{keycloak.base_url}/realms/{REALM_A}"
    assert b["issuer"] == f"{keycloak.base_url}/realms/{realm_b}"
    assert a["jwks_uri"] != b["jwks_uri"]
    assert a["key_set"] != b["key_set"]
    assert (a["store_prefix"], b["store_prefix"]) == (
        f"kc:{REALM_A}:kc-web",
        f"kc:{realm_b}:kc-web",
    )


def test_the_tenant_header_overrides_the_host(app: AppProcess, realm_b: str) -> None:
    chosen = requests.get(
        url_for(app, "a", "/tenant"), headers={"X-Kc-Tenant": "b"}, timeout=10
    ).json()
    assert chosen["issuer"].endswith(f"/realms/{realm_b}")


def test_a_bearer_token_of_one_tenant_is_refused_by_the_other(
    keycloak: KeycloakRealm, app: AppProcess, realm_b: str
) -> None:
    token_a = password_grant(keycloak, REALM_A, "alice")
    token_b = password_grant(keycloak, realm_b, "alice")

    assert bearer_me(app, "a", token_a).status_code == 200
    assert bearer_me(app, "b", token_b).status_code == 200

    refused = bearer_me(app, "b", token_a)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert f'realm="{realm_b}"' in refused.headers["WWW-Authenticate"]
    assert bearer_me(app, "a", token_b).status_code == 401


def test_sessions_stay_in_their_tenant(
    keycloak: KeycloakRealm, app: AppProcess, realm_b: str, redis_server: RedisServer
) -> None:
    alice = keycloak.user("alice")
    browser = BrowserSession()
    logged_a = login_with_form(
        url_for(app, "a", "/kc/login?next=/me"), alice.username, alice.password, session=browser
    )
    logged_b = login_with_form(
        url_for(app, "b", "/kc/login?next=/me"), alice.username, alice.password, session=browser
    )
    on_a: dict[str, Any] = logged_a.response.json()
    on_b: dict[str, Any] = logged_b.response.json()
    assert on_a["iss"].endswith(f"/realms/{REALM_A}")
    assert on_b["iss"].endswith(f"/realms/{realm_b}")

    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert raw.keys(f"kc:{REALM_A}:kc-web:sid:{on_a['sid']}")
    assert raw.keys(f"kc:{realm_b}:kc-web:sid:{on_b['sid']}")
    assert not raw.keys(f"kc:{realm_b}:kc-web:sid:{on_a['sid']}")
    raw.close()

    # Tenant A's session cookie, presented to tenant B: B's store has no such session.
    cookie_a = browser.cookies.get("kc_demo_session", domain="127.0.0.1")
    assert cookie_a
    headers = {"Accept": "application/json", "Cookie": f"kc_demo_session={cookie_a}"}
    crossed = requests.get(
        url_for(app, "a", "/me"), headers={**headers, "X-Kc-Tenant": "b"}, timeout=10
    )
    assert crossed.status_code == 401
    same = requests.get(url_for(app, "a", "/me"), headers=headers, timeout=10)
    assert same.status_code == 200
