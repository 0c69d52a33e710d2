"""Every call of the earlier library's ``Client``/``AsyncClient`` (shared/seed/API.md), as its
users wrote them, against the real Keycloak: configured by a ``keycloak.json`` as the console
exports it, for the default confidential client ``kc-authz`` (no audience mapper).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from seed_support import write_keycloak_json

from kc_core import AsyncClient, Client
from kc_core.errors import LoginError, OAuthError, StateMismatch
from kc_core.oidc import SEED_CALLBACK_URI
from kc_core.testing.browser import login_with_form
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

CLIENT = "kc-authz"


@pytest.fixture
def seed_dir(keycloak: KeycloakRealm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding only ``keycloak.json``, as the earlier library read it."""
    for name in ("KEYCLOAK_SETTINGS", "KEYCLOAK_SERVER_URL", "KEYCLOAK_REALM"):
        monkeypatch.delenv(name, raising=False)
    write_keycloak_json(tmp_path, keycloak, CLIENT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def browser(keycloak: KeycloakRealm, url: str, username: str) -> tuple[str, str]:
    result = login_with_form(
        url, username, keycloak.user(username).password, stop_at=SEED_CALLBACK_URI
    )
    assert result.code is not None
    assert result.state is not None
    return result.code, result.state


def test_every_sync_call(seed_dir: Path, keycloak: KeycloakRealm) -> None:
    alice = keycloak.user("alice")
    kc = Client(callback_uri=SEED_CALLBACK_URI, username="alice", password=alice.password)
    assert Client(SEED_CALLBACK_URI).config.redirect_uri == SEED_CALLBACK_URI  # Django's form
    assert Client().config.redirect_uri == SEED_CALLBACK_URI  # the earlier default

    # -- authentication
    url, state = kc.login(scopes=("openid",))
    code, returned_state = browser(keycloak, url, "bob")
    assert returned_state == state
    tokens = kc.callback(code)
    assert json.loads(json.dumps(tokens))["access_token"] == tokens["access_token"]
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
    assert kc.fetch_userinfo(tokens["access_token"])["preferred_username"] == "bob"
    kc.logout(tokens["access_token"], tokens["refresh_token"])
    with pytest.raises(OAuthError):
        kc.refresh(tokens["refresh_token"])  # bob's session is over in Keycloak

    # -- the client's own tokens: the configured user's
    own = kc.tokens
    assert json.loads(json.dumps(own))["access_token"] == kc.access_token
    assert kc.refresh_token == own["refresh_token"]
    assert "openid" in kc.scope.split()
    assert kc.token_type == "Bearer"
    assert kc.fetch_userinfo()["preferred_username"] == "alice"
    assert kc.userinfo["preferred_username"] == "alice"
    kc.refresh_tokens()
    assert kc.access_token != own["access_token"]
    assert kc.decode(kc.access_token)["preferred_username"] == "alice"
    kids = {key["kid"] for key in kc.jwks["keys"]}
    assert kc.decode(kc.access_token)
    assert kids
    kc.tokens = dict(own)  # settable, as a plain dict
    assert kc.access_token == own["access_token"]

    # -- UMA: PAT, ticket, RPT, introspection
    pat = kc.pat()
    assert json.loads(json.dumps(pat))["token_type"].lower() == "bearer"
    assert kc.pat("alice", alice.password)["access_token"]
    ids = kc.resources
    assert ids == kc.find_resources() == kc.find_resources(pat["access_token"])
    named = {kc.find_resource(i)["name"]: i for i in ids}
    public = named["Public Resource"]
    assert kc.find_resource(public, pat["access_token"])["_id"] == public
    resources = [{"resource_id": public, "resource_scopes": []}]
    assert kc.find_ticket(resources, pat["access_token"])["ticket"]
    ticket = kc.ticket(resources)
    rpt = kc.rpt(kc.access_token)
    assert json.loads(json.dumps(rpt))["access_token"]
    assert kc.rpt(kc.access_token, ticket=ticket["ticket"])["access_token"]
    answer = kc.introspect(rpt["access_token"])
    assert answer["active"] is True
    granted = kc.decode(rpt["access_token"])["authorization"]["permissions"]
    assert [p["rsid"] for p in granted] == [public]

    # -- logout of its own session (the configured user's)
    refresh = kc.refresh_token
    kc.logout()
    with pytest.raises(OAuthError):
        kc.refresh(refresh or "")


def test_every_async_call(seed_dir: Path, keycloak: KeycloakRealm) -> None:
    alice = keycloak.user("alice")

    async def scenario() -> None:
        kc = AsyncClient(callback_uri=SEED_CALLBACK_URI, username="alice", password=alice.password)
        url, state = await kc.login(scopes=("openid",))
        code, returned_state = await asyncio.to_thread(browser, keycloak, url, "bob")
        assert returned_state == state
        tokens = await kc.callback(code)
        assert json.loads(json.dumps(tokens))["refresh_token"] == tokens["refresh_token"]
        userinfo = await kc.fetch_userinfo(tokens["access_token"])
        assert userinfo["preferred_username"] == "bob"
        await kc.logout(tokens["access_token"], tokens["refresh_token"])
        with pytest.raises(OAuthError):
            await kc.refresh(tokens["refresh_token"])

        own = await kc.tokens
        assert await kc.access_token == own["access_token"]
        assert await kc.refresh_token == own["refresh_token"]
        assert "openid" in (await kc.scope).split()
        assert await kc.token_type == "Bearer"
        assert (await kc.fetch_userinfo())["preferred_username"] == "alice"
        assert (await kc.userinfo)["preferred_username"] == "alice"
        await kc.refresh_tokens()
        assert await kc.access_token != own["access_token"]
        assert (await kc.decode(await kc.access_token))["preferred_username"] == "alice"
        assert (await kc.jwks)["keys"]
        kc.tokens = dict(own)
        assert await kc.access_token == own["access_token"]

        pat = await kc.pat()
        assert json.loads(json.dumps(pat))["access_token"]
        assert (await kc.pat("alice", alice.password))["access_token"]
        ids = await kc.resources
        assert ids == await kc.find_resources() == await kc.find_resources(pat["access_token"])
        named = {(await kc.find_resource(i))["name"]: i for i in ids}
        public = named["Public Resource"]
        assert (await kc.find_resource(public, pat["access_token"]))["_id"] == public
        resources = [{"resource_id": public, "resource_scopes": []}]
        assert (await kc.find_ticket(resources, pat["access_token"]))["ticket"]
        await kc.ticket(resources)
        rpt = await kc.rpt(await kc.access_token)
        assert (await kc.introspect(rpt["access_token"]))["active"] is True

        refresh = await kc.refresh_token
        await kc.logout()
        with pytest.raises(OAuthError):
            await kc.refresh(refresh or "")
        await kc.aclose()

    asyncio.run(scenario())


def test_service_account_tokens_without_a_user(seed_dir: Path) -> None:
    kc = Client()
    assert kc.decode(kc.access_token)["azp"] == CLIENT
    assert kc.refresh_token is None  # Keycloak gives client credentials no refresh token
    first = kc.access_token
    kc.refresh_tokens()
    assert kc.access_token != first
    kc.logout()  # nothing of its own to end: no error


def test_logout_with_only_an_access_token_is_refused(
    seed_dir: Path, keycloak: KeycloakRealm
) -> None:
    kc = Client(username="alice", password=keycloak.user("alice").password)
    with pytest.raises(LoginError, match="refresh token"):
        kc.logout(kc.access_token)
    kc.logout(kc.refresh_token)  # kc's own logout(refresh_token) form still works


# -- §4.1: callback(code) with abandoned and parallel logins ------------------------------------


def test_seed_callback_with_abandoned_and_parallel_logins(
    seed_dir: Path, keycloak: KeycloakRealm
) -> None:
    kc = Client()
    for _ in range(20):
        kc.login()  # visitors who never come back
    users = ("alice", "bob", "carol")
    started = [kc.login() for _ in users]

    def log_in(index: int) -> dict[str, Any]:
        url, _ = started[index]
        code, _state = browser(keycloak, url, users[index])
        tokens = kc.callback(code)
        return kc.fetch_userinfo(tokens["access_token"])

    with ThreadPoolExecutor(max_workers=3) as pool:
        userinfos = list(pool.map(log_in, range(3)))
    assert [u["preferred_username"] for u in userinfos] == list(users)
    assert len(kc._pending) == 20  # the abandoned ones still wait, single use


def test_seed_callback_refuses_a_replayed_login(seed_dir: Path, keycloak: KeycloakRealm) -> None:
    kc = Client()
    kc.login()
    url, _ = kc.login()
    code, _state = browser(keycloak, url, "alice")
    kc.callback(code)
    # The same login's nonce again (Keycloak would refuse the used code anyway).
    again_url, _ = kc.login()
    code2, _ = browser(keycloak, again_url, "alice")
    kc.callback(code2)
    with pytest.raises((StateMismatch, OAuthError)):
        kc.callback(code2)
