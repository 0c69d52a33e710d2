"""The Flask example's tests, written with kc's user test kit: no Keycloak needed.

``kc_test.login`` runs kc's real login round trip in process (state, nonce and PKCE are
checked); ``kc_test.bearer`` gives an ``Authorization`` header with any roles.
"""

from __future__ import annotations

from flask.testing import FlaskClient

from kc_core.testing.users import UserKit


def test_profile_after_login(kc_test: UserKit, client: FlaskClient) -> None:
    kc_test.login(client, "alice")
    page = client.get("/profile")
    assert page.status_code == 200
    assert b"alice" in page.data


def test_profile_sends_a_visitor_to_the_login(client: FlaskClient) -> None:
    assert client.get("/profile").status_code == 302


def test_admin_page_with_the_admin_role(kc_test: UserKit, client: FlaskClient) -> None:
    kc_test.login(client, "alice", roles=["realm:admin"])
    assert client.get("/admin").status_code == 200


def test_admin_page_refuses_a_user_without_it(kc_test: UserKit, client: FlaskClient) -> None:
    kc_test.login(client, "bob")
    assert client.get("/admin").status_code == 403


def test_reports_api_with_a_bearer_token(kc_test: UserKit, client: FlaskClient) -> None:
    answer = client.get("/api/reports", headers=kc_test.bearer("carol", roles=["kc-api:reader"]))
    assert answer.status_code == 200
    assert answer.json == {"reports": [{"id": 1, "title": "Quarterly"}], "reader": "carol"}


def test_reports_api_refuses_a_token_without_the_role(
    kc_test: UserKit, client: FlaskClient
) -> None:
    assert client.get("/api/reports", headers=kc_test.bearer("carol")).status_code == 403


def test_reports_api_refuses_no_token_and_an_expired_one(
    kc_test: UserKit, client: FlaskClient
) -> None:
    assert client.get("/api/reports").status_code == 401
    expired = kc_test.bearer(roles=["kc-api:reader"], lifetime=-60)
    assert client.get("/api/reports", headers=expired).status_code == 401


def test_logout_ends_the_session(kc_test: UserKit, client: FlaskClient) -> None:
    kc_test.login(client, "alice")
    kc_test.logout(client)
    assert client.get("/profile").status_code == 302
