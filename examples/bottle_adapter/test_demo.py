"""The Bottle demo's tests, written with kc's user test kit: no Keycloak needed.

``kc_test.login`` runs kc's real login round trip in process (state, nonce and PKCE are
checked); ``kc_test.bearer`` gives an ``Authorization`` header with any roles.
"""

from __future__ import annotations

from werkzeug.test import Client

from kc_core.testing.users import UserKit


def test_private_page_after_login(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice")
    assert client.get("/private").get_data() == b"hello alice"


def test_admin_page_with_the_admin_role(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice", roles=["realm:admin"])
    assert client.get("/admin").status_code == 200


def test_admin_page_refuses_a_user_without_it(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "bob")
    assert client.get("/admin").status_code == 403


def test_items_api_with_a_bearer_token(kc_test: UserKit, client: Client) -> None:
    answer = client.get("/api/items", headers=kc_test.bearer("carol", roles=["kc-api:reader"]))
    assert answer.json == {"items": [1, 2, 3], "user": "carol"}
    assert client.get("/api/items", headers=kc_test.bearer("carol")).status_code == 403


def test_scope_api_needs_the_scope(kc_test: UserKit, client: Client) -> None:
    assert client.get("/api/phone", headers=kc_test.bearer()).status_code == 403
    assert client.get("/api/phone", headers=kc_test.bearer(scope="openid phone")).status_code == 200


def test_logout_ends_the_session(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice")
    kc_test.logout(client)
    assert client.get("/private").status_code == 302
