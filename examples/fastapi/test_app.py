"""The FastAPI example's tests, written with kc's user test kit: no Keycloak needed.

``kc_test.login`` runs kc's real login round trip in process (state, nonce and PKCE are
checked); ``kc_test.bearer`` gives an ``Authorization`` header with any roles.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from kc_core.testing.users import UserKit


def test_profile_after_login(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "alice", roles=["realm:auditor"])
    answer = client.get("/profile")
    assert answer.status_code == 200
    assert answer.json() == {
        "username": "alice",
        "email": "alice@example.test",
        "roles": ["auditor"],
    }


def test_home_knows_the_user(kc_test: UserKit, client: TestClient) -> None:
    assert client.get("/").json()["authenticated"] is False
    kc_test.login(client, "alice")
    assert client.get("/").json()["authenticated"] is True


def test_admin_route_with_the_admin_role(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "alice", roles=["realm:admin"])
    assert client.get("/admin").status_code == 200


def test_admin_route_refuses_a_user_without_it(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "bob")
    assert client.get("/admin").status_code == 403


def test_reports_api_with_a_bearer_token(kc_test: UserKit, client: TestClient) -> None:
    answer = client.get("/api/reports", headers=kc_test.bearer("carol", roles=["kc-api:reader"]))
    assert answer.status_code == 200
    assert answer.json() == {"reports": ["q1", "q2"], "reader": "carol"}


def test_reports_api_refuses_no_token_and_a_missing_role(
    kc_test: UserKit, client: TestClient
) -> None:
    missing = client.get("/api/reports")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/reports", headers=kc_test.bearer("carol")).status_code == 403


def test_logout_ends_the_session(kc_test: UserKit, client: TestClient) -> None:
    kc_test.login(client, "alice")
    kc_test.logout(client)
    assert client.get("/").json()["authenticated"] is False
