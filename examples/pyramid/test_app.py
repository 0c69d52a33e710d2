"""The Pyramid example's tests, written with kc's user test kit and WebTest: no Keycloak.

``kc_test.login`` runs kc's real login round trip in process (state, nonce and PKCE are
checked); ``kc_test.bearer`` gives an ``Authorization`` header with any roles.
"""

from __future__ import annotations

from webtest import TestApp

from kc_core.testing.users import UserKit


def test_profile_after_login(kc_test: UserKit, client: TestApp) -> None:
    kc_test.login(client, "alice", roles=["realm:auditor"])
    page = client.get("/profile")
    assert page.status_int == 200
    assert "Profile of alice" in page.text
    assert "Realm roles: auditor" in page.text


def test_profile_sends_a_visitor_to_the_login(client: TestApp) -> None:
    assert client.get("/profile").status_int == 302


def test_admin_page_with_the_admin_role(kc_test: UserKit, client: TestApp) -> None:
    kc_test.login(client, "alice", roles=["realm:admin"])
    assert client.get("/admin").status_int == 200


def test_admin_page_refuses_a_user_without_it(kc_test: UserKit, client: TestApp) -> None:
    kc_test.login(client, "bob")
    assert client.get("/admin", status=403).status_int == 403


def test_reports_api_with_a_bearer_token(kc_test: UserKit, client: TestApp) -> None:
    answer = client.get("/api/reports", headers=kc_test.bearer("carol", roles=["kc-api:reader"]))
    assert answer.json == {"reports": ["2024-q1", "2024-q2"], "reader": "carol"}


def test_reports_api_refuses_no_token_and_a_missing_role(kc_test: UserKit, client: TestApp) -> None:
    assert client.get("/api/reports", status=401).headers["WWW-Authenticate"].startswith("Bearer")
    client.get("/api/reports", headers=kc_test.bearer("carol"), status=403)


def test_logout_ends_the_session(kc_test: UserKit, client: TestApp) -> None:
    kc_test.login(client, "alice")
    kc_test.logout(client)
    assert client.get("/profile").status_int == 302
