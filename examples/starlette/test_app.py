"""The Starlette example's tests, written with kc's user test kit: no Keycloak needed.

``kc_test.login`` runs kc's real login round trip in process (state, nonce and PKCE are
checked); ``kc_test.bearer`` gives an ``Authorization`` header with any roles.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from kc_core.testing.users import UserKit


def test_profile_after_login(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "alice", roles=["realm:auditor"])
    page = client.get("/profile")
    assert page.status_code == 200
    assert "realm roles: auditor" in page.text


def test_profile_sends_a_visitor_to_the_login(client: TestClient) -> None:
    assert client.get("/profile", follow_redirects=False).status_code in (302, 303, 307)


def test_admin_page_with_the_admin_role(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "alice", roles=["realm:admin"])
    assert client.get("/admin").status_code == 200


def test_admin_page_refuses_a_user_without_it(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "bob")
    assert client.get("/admin").status_code == 403


def test_reports_api_with_a_bearer_token(kc_test: UserKit, client: TestClient) -> None:
    answer = client.get("/api/reports", headers=kc_test.bearer("carol", roles=["kc-api:reader"]))
    assert answer.status_code == 200
    assert answer.json() == {"reports": ["q1", "q2"], "reader": "carol"}


def test_reports_api_refuses_a_token_without_the_role(kc_test: UserKit, client: TestClient) -> None:
    assert client.get("/api/reports", headers=kc_test.bearer("carol")).status_code == 403


def test_reports_api_refuses_a_token_for_another_app(kc_test: UserKit, client: TestClient) -> None:
    foreign = kc_test.bearer(roles=["kc-api:reader"], client_id="other-app", audience="other-app")
    answer = client.get("/api/reports", headers=foreign)
    assert answer.status_code == 401
    assert "invalid_token" in answer.headers["www-authenticate"]


def test_logout_ends_the_session(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "alice")
    kc_test.logout(client)
    assert client.get("/profile", follow_redirects=False).status_code in (302, 303, 307)
