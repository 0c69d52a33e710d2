"""The Django example's tests, written with kc's user test kit: no Keycloak needed.

``kc_test.login`` runs kc's real login round trip in process (state, nonce and PKCE are
checked); ``kc_test.bearer`` gives an ``Authorization`` header with any roles.
"""

from __future__ import annotations

from django.test import Client

from kc_core.testing.users import UserKit


def test_profile_after_login(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice", roles=["realm:auditor"])
    page = client.get("/profile")
    assert page.status_code == 200
    assert b"Profile of alice" in page.content
    assert b"Realm roles: auditor" in page.content


def test_profile_sends_a_visitor_to_the_login(client: Client) -> None:
    assert client.get("/profile").status_code == 302


def test_admin_page_with_the_admin_role(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice", roles=["realm:admin"])
    assert client.get("/admin").status_code == 200


def test_admin_page_refuses_a_user_without_it(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "bob")
    assert client.get("/admin").status_code == 403


def test_reports_api_with_a_bearer_token(kc_test: UserKit, client: Client) -> None:
    answer = client.get("/api/reports", headers=kc_test.bearer("carol", roles=["kc-api:reader"]))
    assert answer.status_code == 200
    assert answer.json() == {"reports": ["q1", "q2"], "reader": "carol"}


def test_reports_api_refuses_no_token_and_a_missing_role(kc_test: UserKit, client: Client) -> None:
    assert client.get("/api/reports").status_code == 401
    assert client.get("/api/reports", headers=kc_test.bearer("carol")).status_code == 403


def test_logout_ends_the_session(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice")
    kc_test.logout(client)
    assert client.get("/profile").status_code == 302


def test_backchannel_logout_ends_the_session(kc_test: UserKit, client: Client) -> None:
    kc_test.login(client, "alice")
    assert kc_test.backchannel_logout(client, "alice") == 1
    assert client.get("/profile").status_code == 302
