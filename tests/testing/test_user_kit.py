"""The user test kit: its issuer answers as Keycloak does, and kc's real checks still run.

No Keycloak here: the kit exists so users test their own apps without one. What these
tests show is that the kit does not bypass kc (a replayed or forged callback, a wrong PKCE
verifier, a wrong client secret, a foreign audience or an expired token are all refused by
kc's own code), and that its fixtures work in a user's project (``pytester``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from kc_flask import Keycloak, SealedCookieSessionInterface, current_user, login_required

from kc_core import Client, Config
from kc_core.errors import OAuthError, TokenExpired, WrongAudience
from kc_core.testing.issuer import LocalIssuer, LocalUser
from kc_core.testing.users import LoginFailed, UserKit, user_kit

CLIENT_ID = "shop"
SECRET = "shop-secret"


@pytest.fixture
def kit() -> Iterator[UserKit]:
    with user_kit(CLIENT_ID, SECRET, realm="shop-realm") as kit:
        yield kit


def _flask_app(kit: UserKit, **config: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        {
            "SECRET_KEY": "test-only-secret-key-0123456789",
            "KEYCLOAK_SERVER_URL": kit.server_url,
            "KEYCLOAK_REALM": kit.realm,
            "KEYCLOAK_CLIENT_ID": CLIENT_ID,
            "KEYCLOAK_CLIENT_SECRET": SECRET,
            **config,
        }
    )
    app.session_interface = SealedCookieSessionInterface()
    Keycloak(app)

    @app.get("/me")
    @login_required
    def me() -> str:
        return f"{current_user.username} {sorted(current_user.realm_roles)}"

    return app


@pytest.fixture
def client(kit: UserKit) -> FlaskClient:
    return _flask_app(kit).test_client()


def _start_login(kit: UserKit, client: FlaskClient) -> str:
    """The issuer's redirect back to the app, as the browser would follow it."""
    start = client.get("/kc/login?next=/me")
    return kit.issuer.authorize(start.headers["Location"], kit.user("alice"))


def test_login_gives_a_session_with_the_roles(kit: UserKit, client: FlaskClient) -> None:
    landing = kit.login(client, "alice", roles=["realm:admin", "realm:auditor"], next="/me")
    assert landing.headers["Location"] == "/me"
    assert client.get("/me").get_data() == b"alice ['admin', 'auditor']"


def test_the_login_sends_state_nonce_and_pkce(kit: UserKit, client: FlaskClient) -> None:
    start = client.get("/kc/login")
    query = dict(parse_qsl(urlsplit(start.headers["Location"]).query))
    assert query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256"
    assert {"state", "nonce", "code_challenge", "redirect_uri"} <= set(query)


def test_a_replayed_callback_is_refused_by_kc(kit: UserKit, client: FlaskClient) -> None:
    callback = _start_login(kit, client)
    assert client.get(callback).status_code == 302
    assert client.get(callback).status_code == 400


def test_a_callback_with_a_forged_state_is_refused_by_kc(kit: UserKit, client: FlaskClient) -> None:
    callback = _start_login(kit, client)
    query = dict(parse_qsl(urlsplit(callback).query))
    forged = callback.replace(query["state"], "forged-state")
    assert client.get(forged).status_code == 400
    assert client.get("/me").status_code == 302  # still not logged in


def test_the_issuer_checks_the_pkce_verifier_and_spends_codes_once(kit: UserKit) -> None:
    challenge_url = (
        f"{kit.issuer.endpoint('authorization_endpoint')}?response_type=code&client_id={CLIENT_ID}"
        "&redirect_uri=http://app/cb&state=s&code_challenge_method=S256"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    code = dict(parse_qsl(urlsplit(kit.issuer.authorize(challenge_url, kit.user())).query))["code"]
    token_url = kit.issuer.endpoint("token_endpoint")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://app/cb"}
    auth = (CLIENT_ID, SECRET)
    wrong = requests.post(token_url, data={**form, "code_verifier": "x" * 43}, auth=auth, timeout=5)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")

    code = dict(parse_qsl(urlsplit(kit.issuer.authorize(challenge_url, kit.user())).query))["code"]
    # RFC 7636 appendix B: this verifier's S256 challenge is the one sent above.
    right = {**form, "code": code, "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}
    assert requests.post(token_url, data=right, auth=auth, timeout=5).status_code == 200
    again = requests.post(token_url, data=right, auth=auth, timeout=5)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_a_wrong_client_secret_fails_the_login(kit: UserKit) -> None:
    client = _flask_app(kit, KEYCLOAK_CLIENT_SECRET="not-the-secret").test_client()
    with pytest.raises(LoginFailed, match="refused the login callback: 401"):
        kit.login(client, "alice")


def test_an_app_of_another_realm_is_named_in_the_failure(kit: UserKit) -> None:
    client = _flask_app(kit, KEYCLOAK_REALM="other").test_client()
    with pytest.raises(LoginFailed, match="realm 'shop-realm'"):
        kit.login(client, "alice")


def test_logout_ends_the_app_and_issuer_sessions(kit: UserKit, client: FlaskClient) -> None:
    kit.login(client, "alice")
    assert kit.issuer.sessions_of(kit.user("alice"))
    kit.logout(client)
    assert client.get("/me").status_code == 302
    assert kit.issuer.sessions_of(kit.user("alice")) == []


def test_backchannel_logout_ends_the_app_session(kit: UserKit, client: FlaskClient) -> None:
    kit.login(client, "alice")
    assert kit.backchannel_logout(client, "alice") == 1
    assert client.get("/me").status_code == 302


def test_kc_validates_the_kits_tokens_with_the_issuers_keys(kit: UserKit) -> None:
    config = Config(
        server_url=kit.server_url, realm=kit.realm, client_id=CLIENT_ID, client_secret=SECRET
    )
    with Client(config) as kc:
        claims = kc.validate_access_token(kit.access_token("bob", roles=["realm:ops", "api:read"]))
        assert claims["preferred_username"] == "bob"
        assert claims["realm_access"] == {"roles": ["ops"]}
        assert claims["resource_access"] == {"api": {"roles": ["read"]}}
        assert kc.has_role(claims, "api:read")
        with pytest.raises(WrongAudience):
            kc.validate_access_token(kit.access_token(client_id="other", audience="other"))
        with pytest.raises(TokenExpired):
            kc.validate_access_token(kit.access_token(lifetime=-60))


def test_refresh_userinfo_and_an_ended_session(kit: UserKit) -> None:
    config = Config(
        server_url=kit.server_url,
        realm=kit.realm,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        redirect_uri="http://app/cb",
    )
    user = LocalUser("dora", email="dora@shop.test")
    with Client(config) as kc:
        login = kc.login()
        callback = dict(parse_qsl(urlsplit(kit.issuer.authorize(login.url, user)).query))
        tokens = kc.callback(callback["code"], callback["state"], iss=callback["iss"])
        assert tokens.id_claims is not None
        assert tokens.id_claims["nonce"] == login.nonce
        assert kc.fetch_userinfo(tokens.access_token)["email"] == "dora@shop.test"
        fresh = kc.refresh(str(tokens.refresh_token))
        assert fresh.access_token != tokens.access_token
        kit.issuer.end_sessions(sub=user.sub)
        with pytest.raises(OAuthError) as refused:
            kc.refresh(str(fresh.refresh_token))
        assert refused.value.error == "invalid_grant"


def test_interception_is_scoped_to_the_block() -> None:
    issuer = LocalIssuer()
    url = f"{issuer.issuer}/.well-known/openid-configuration"
    with issuer.intercept():
        assert requests.get(url, timeout=5).json()["issuer"] == issuer.issuer
        assert type(requests.Session().get_adapter("http://other.test/")).__name__ == "HTTPAdapter"
    assert type(requests.Session().get_adapter(url)).__name__ == "HTTPAdapter"


def test_an_unknown_test_client_is_named(kit: UserKit) -> None:
    with pytest.raises(TypeError, match="not a test client the kit knows"):
        kit.login(object())


def test_the_fixtures_work_in_a_users_project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        textwrap.dedent(
            """
            import pytest

            pytest_plugins = ["kc_core.testing.users_plugin"]


            @pytest.fixture
            def kc_test_settings():
                return {"realm": "acme", "client_id": "web", "client_secret": "s3cret"}
            """
        )
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            from kc_core import Client, Config


            def test_token(kc_test, kc_issuer):
                assert kc_issuer.issuer == "http://keycloak.test/realms/acme"
                config = Config(server_url=kc_test.server_url, realm="acme", client_id="web")
                with Client(config) as kc:
                    header = kc_test.bearer("eve", roles=["realm:admin"])["Authorization"]
                    claims = kc.validate_access_token(header.removeprefix("Bearer "))
                assert claims["realm_access"]["roles"] == ["admin"]


            KEYS = []


            def test_keys_stay_for_the_session_first(kc_issuer):
                KEYS.append(kc_issuer.key_id)


            def test_keys_stay_for_the_session_second(kc_issuer):
                assert KEYS == [kc_issuer.key_id]
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
