"""The OIDC client's trust checks against the real Keycloak: userinfo's subject, RFC 9207 iss."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from kc_core import Client, Config
from kc_core.errors import IssuerMismatch, SubjectMismatch
from kc_core.testing.browser import login_with_form
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

REDIRECT_URI = "http://127.0.0.1:9/callback"


@pytest.fixture
def web(keycloak: KeycloakRealm) -> Client:
    return Client(
        Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id="kc-web",
            client_secret="kc-web-secret",
            redirect_uri=REDIRECT_URI,
        )
    )


def test_userinfo_must_name_the_id_tokens_subject(web: Client) -> None:
    alice = web.password_grant("alice", "alice-password", scopes=["openid"])
    bob = web.password_grant("bob", "bob-password", scopes=["openid"])
    assert alice.id_claims is not None
    assert bob.id_claims is not None
    mine = web.fetch_userinfo(alice.access_token, sub=alice.id_claims["sub"])
    assert mine["preferred_username"] == "alice"
    with pytest.raises(SubjectMismatch):
        web.fetch_userinfo(alice.access_token, sub=bob.id_claims["sub"])


def test_the_callback_checks_the_issuer_keycloak_sends(
    web: Client, keycloak: KeycloakRealm
) -> None:
    assert web.discovery.openid()["authorization_response_iss_parameter_supported"] is True
    for forged in (f"{keycloak.base_url}/realms/master", None):
        login = web.login()
        done = login_with_form(login.url, "alice", "alice-password", stop_at=REDIRECT_URI)
        query = dict(parse_qsl(urlsplit(done.url).query))
        assert query["iss"] == keycloak.issuer
        with pytest.raises(IssuerMismatch):
            web.callback(query["code"], query["state"], login=login, iss=forged)
    login = web.login()
    done = login_with_form(login.url, "alice", "alice-password", stop_at=REDIRECT_URI)
    query = dict(parse_qsl(urlsplit(done.url).query))
    tokens = web.callback(query["code"], query["state"], login=login, iss=query["iss"])
    assert tokens.id_claims is not None
