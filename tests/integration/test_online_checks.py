"""Online bearer checks against the real Keycloak: introspection with a short cache, and
sessions ended by back-channel logout refused on every worker sharing Redis.

Off by default: the first test also shows a disabled user's token still passing the local
JWT path, which is exactly what the online checks are for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from apps.harness import APP_SCRIPT, AppProcess, free_port, temporary_client, wait_for
from toy_adapter import ToyAdapter, ToyRequest

from kc_core import Client, Config
from kc_core.engine import Engine, EngineSettings, Guard, OnlineVerifier
from kc_core.errors import ConfigError
from kc_core.plugins import Plugins
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.redis_server import RedisServer
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

TTL = 1.0
# How long past the TTL a refusal may take: one introspection round trip on a loaded machine.
SLACK = 2.0


class Introspections:
    """Counts a client's calls to Keycloak's introspection endpoint (a response hook)."""

    def __init__(self, client: Client) -> None:
        self.count = 0
        self._url = client.discovery.endpoint("introspection_endpoint")
        client.http.session.hooks["response"].append(self._seen)

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.url == self._url:
            self.count += 1


def _engine(keycloak: KeycloakRealm, client_id: str = "kc-api", **settings: Any) -> Engine:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id=client_id,
        client_secret=keycloak.client(client_id).secret,
        retries=0,
    )
    return Engine(config, plugins=plugins, settings=EngineSettings(**settings))


def _protect(engine: Engine, token: str) -> Guard:
    return engine.protect(ToyRequest(headers={"Authorization": f"Bearer {token}"}))


@pytest.fixture
def bob_enabled_afterwards(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> Iterator[None]:
    try:
        yield
    finally:
        keycloak_admin.set_user_enabled(keycloak.realm, "bob", True)


def test_a_disabled_user_is_refused_within_the_cache_ttl(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    access_token: Callable[..., str],
    bob_enabled_afterwards: None,
) -> None:
    token = access_token("bob")  # kc-web's token; its aud names kc-api (bob's kc-api roles)
    offline = _engine(keycloak)
    online = _engine(keycloak, bearer_introspection=True, bearer_check_ttl=TTL)
    calls = Introspections(online.client)
    assert isinstance(online.bearer.verifier, OnlineVerifier)

    first = _protect(online, token)
    assert first.identity is not None, first.response
    assert first.identity.username == "bob"
    assert _protect(online, token).identity is not None
    assert calls.count == 1, "the second request is answered from the cache"
    assert _protect(offline, token).identity is not None

    keycloak_admin.set_user_enabled(keycloak.realm, "bob", False)
    disabled_at = time.monotonic()
    wait_for(
        lambda: _protect(online, token).response is not None,
        timeout=TTL + SLACK,
        what="the disabled user's token refused",
    )
    refused_after = time.monotonic() - disabled_at
    refusal = _protect(online, token).response
    assert refusal is not None
    assert refusal.status == 401
    assert "not active" in (refusal.header("WWW-Authenticate") or "")
    assert refused_after <= TTL + SLACK
    assert _protect(offline, token).identity is not None, "the local path alone cannot know"
    # A refusal is cached too: refused again without asking Keycloak again.
    before = calls.count
    assert _protect(online, token).response is not None
    assert calls.count == before


def test_introspection_by_a_client_not_in_the_tokens_audience_is_refused(
    keycloak: KeycloakRealm, keycloak_version: tuple[int, ...], access_token: Callable[..., str]
) -> None:
    """Keycloak 26.6.2+ answers ``active: false`` to the client the token was issued to
    (``azp``) when ``aud`` does not name it: the API's own client must introspect."""
    if keycloak_version < (26, 6, 2):
        pytest.skip("before 26.6.2 Keycloak answers any confidential client of the realm")
    token = access_token("bob")
    web = _engine(keycloak, client_id="kc-web", bearer_introspection=True)
    assert _protect(_engine(keycloak, client_id="kc-web"), token).identity is not None
    refusal = _protect(web, token).response
    assert refusal is not None
    assert refusal.status == 401
    assert "aud" in (refusal.header("WWW-Authenticate") or "")


def test_refusing_ended_sessions_needs_a_store_that_records_them(keycloak: KeycloakRealm) -> None:
    class Forgetful:
        """A token store that does not remember ended sessions."""

        def __init__(self) -> None:
            self._memory = MemoryTokenStore()
            self.get = self._memory.get
            self.set = self._memory.set
            self.delete = self._memory.delete
            self.delete_matching = self._memory.delete_matching

    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    config = Config(server_url=keycloak.base_url, realm=keycloak.realm, client_id="kc-api")
    with pytest.raises(ConfigError, match="bearer_refuse_ended_sessions"):
        Engine(
            config,
            plugins=plugins,
            store=Forgetful(),
            settings=EngineSettings(bearer_refuse_ended_sessions=True),
        )


# -- two worker processes sharing Redis ------------------------------------------------------


def test_a_backchannel_logout_refuses_that_sessions_bearer_tokens_on_every_worker(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    port_a, port_b = free_port(), free_port()
    backchannel = f"http://127.0.0.1:{port_a}/kc/backchannel-logout"
    with temporary_client(
        keycloak_admin, keycloak.realm, "kc-web", **{"backchannel.logout.url": backchannel}
    ) as web:
        args = [
            "--secret", "shared-app-secret",
            "--redis-url", redis_server.url,
            "--server-url", keycloak.base_url,
            "--tenant", f"web={keycloak.realm},{web['clientId']},{web['secret']}",
            "--setting", "bearer_refuse_ended_sessions=true",
            "--setting", f"bearer_check_ttl={TTL}",
        ]  # fmt: skip
        log_dir = tmp_path_factory.mktemp("online-apps")
        a = AppProcess(args, port=port_a, log_dir=log_dir, script=APP_SCRIPT)
        b = AppProcess(args, port=port_b, log_dir=log_dir, script=APP_SCRIPT)
        config = Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id=web["clientId"],
            client_secret=web["secret"],
        )
        try:
            a.start()
            b.start()
            with Client(config) as grants:
                alice = grants.password_grant("alice", keycloak.user("alice").password)
                bob = grants.password_grant("bob", keycloak.user("bob").password)
            sid = (alice.id_claims or {})["sid"]

            def me(app: AppProcess, token: str) -> int:
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
                return requests.get(f"{app.url}/me", headers=headers, timeout=5).status_code

            for app in (a, b):
                assert me(app, alice.access_token) == 200
                assert me(app, bob.access_token) == 200

            ended_at = time.monotonic()
            keycloak_admin.delete_session(keycloak.realm, sid)  # Keycloak posts to A only
            wait_for(
                lambda: me(a, alice.access_token) == 401 and me(b, alice.access_token) == 401,
                TTL + SLACK + 3.0,
                "alice's bearer token refused on A and B",
            )
            elapsed = time.monotonic() - ended_at
            print(f"\nbearer token of the ended session refused on both after {elapsed:.2f} s")
            assert me(b, bob.access_token) == 200, "another session's token still passes"
            refused = requests.get(
                f"{b.url}/me", headers={"Authorization": f"Bearer {alice.access_token}"}, timeout=5
            )
            assert "session ended (back-channel logout)" in refused.headers["WWW-Authenticate"]
        finally:
            a.stop()
            b.stop()
