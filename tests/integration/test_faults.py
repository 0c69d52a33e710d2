"""Several worker processes and a failing Keycloak or Redis (issue 12).

The Flask example runs under ``gunicorn -w 3`` with the Redis token store, as it is deployed,
against the real Keycloak and a real ``redis-server``. Each test uses its own copy of the
``kc-web`` client, whose access tokens live :data:`TOKEN_LIFE` seconds, and the app refreshes
them :data:`MARGIN` seconds before they expire: a session enters its refresh window
``TOKEN_LIFE - MARGIN`` seconds after login.

- Refresh-token rotation on in the realm ("Revoke Refresh Token", restored afterwards): 20
  concurrent requests of one session at refresh time send exactly one refresh to Keycloak
  (counted in Keycloak's own event log), none is refused, the session survives.
- Keycloak frozen (SIGSTOP of its JVM, always resumed): bearer requests and sessions with a
  valid token keep their latency, an expired session gets 503 with ``Retry-After`` within
  the short refresh timeout, and everything recovers without restarting the app.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from apps.harness import temporary_client
from test_examples_multiprocess import EXAMPLE_DEPLOYMENTS, ServerProcess, _free_port

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.redis_server import RedisServer, find_redis_server
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

REALM = "kc-test"
SECRET = "faults-example-secret-0123456789abcdef0123"
TOKEN_LIFE = 60
MARGIN = 54
BURST = 20
REFRESH_TIMEOUT = 1.0
_TIMEOUT = 15.0
_REFRESH_EVENTS = ("REFRESH_TOKEN", "REFRESH_TOKEN_ERROR")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None and not os.environ.get("CI"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer.start() as server:
        yield server


@pytest.fixture(scope="module")
def short_lived_client(keycloak_admin: KeycloakAdmin) -> Iterator[dict[str, Any]]:
    """A copy of kc-web whose access tokens live TOKEN_LIFE seconds."""
    with temporary_client(
        keycloak_admin, REALM, "kc-web", **{"access.token.lifespan": str(TOKEN_LIFE)}
    ) as client:
        yield client


@pytest.fixture(scope="module")
def flask_app(
    keycloak: KeycloakRealm,
    redis_server: RedisServer,
    short_lived_client: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """The Flask example under gunicorn with three workers and the Redis store."""
    example = EXAMPLE_DEPLOYMENTS["flask"]
    env = {
        "FLASK_SECRET_KEY": SECRET,
        "FLASK_KEYCLOAK_TOKEN_STORE": redis_server.url,
        "KEYCLOAK_URL": keycloak.base_url,
        "FLASK_KEYCLOAK_CLIENT_ID": short_lived_client["clientId"],
        "FLASK_KEYCLOAK_CLIENT_SECRET": short_lived_client["secret"],
        "FLASK_KEYCLOAK_REFRESH_MARGIN": str(MARGIN),
        "FLASK_KEYCLOAK_REFRESH_TIMEOUT": str(REFRESH_TIMEOUT),
    }
    server = ServerProcess(example, _free_port(), env, tmp_path_factory.mktemp("faults"))
    try:
        server.wait_until_every_worker_answers()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def refresh_token_rotation(admin: KeycloakAdmin) -> Iterator[None]:
    """The realm's "Revoke Refresh Token" on (a refresh token works once), then restored."""
    realm = admin.get(admin.realm_path(REALM))
    before = {k: realm.get(k) for k in ("revokeRefreshToken", "refreshTokenMaxReuse")}
    admin.update_realm(REALM, revokeRefreshToken=True, refreshTokenMaxReuse=0)
    try:
        yield
    finally:
        admin.update_realm(
            REALM,
            revokeRefreshToken=bool(before["revokeRefreshToken"]),
            refreshTokenMaxReuse=int(before["refreshTokenMaxReuse"] or 0),
        )


@contextlib.contextmanager
def refresh_events(admin: KeycloakAdmin) -> Iterator[Callable[[str], dict[str, int]]]:
    """Keycloak's event log on for refreshes; yields a counter of them for one client."""
    path = f"{admin.realm_path(REALM)}/events/config"
    before = admin.get(path)
    types = sorted({*(before.get("enabledEventTypes") or ()), *_REFRESH_EVENTS})
    admin.put(path, json={**before, "eventsEnabled": True, "enabledEventTypes": types})

    def count(client_id: str) -> dict[str, int]:
        events = admin.get(
            f"{admin.realm_path(REALM)}/events",
            params={"client": client_id, "type": list(_REFRESH_EVENTS), "max": 1000},
        )
        return {kind: sum(1 for e in events if e["type"] == kind) for kind in _REFRESH_EVENTS}

    try:
        yield count
    finally:
        admin.put(path, json=before)


def log_alice_in(app: ServerProcess) -> tuple[BrowserSession, float]:
    """Alice's browser after login, and when her tokens were issued (at the latest)."""
    browser = BrowserSession()
    browser.max_redirects = 10
    result = login_with_form(f"{app.url}/profile", "alice", "alice-password", session=browser)
    issued = time.time()
    assert result.response.status_code == 200, result.response.text[-2000:]
    assert "alice" in result.response.text
    return browser, issued


def profile(app: ServerProcess, browser: BrowserSession) -> tuple[requests.Response, float]:
    """One /profile request on a new connection (so requests spread over the workers)."""
    started = time.monotonic()
    answer = requests.get(
        f"{app.url}/profile",
        headers={**browser.headers, "Connection": "close"},
        cookies=browser.cookies.copy(),
        allow_redirects=False,
        timeout=_TIMEOUT,
    )
    return answer, time.monotonic() - started


def wait_until(instant: float) -> None:
    """Sleep until the wall clock reads ``instant`` (a token's window is wall-clock time)."""
    while time.time() < instant:
        time.sleep(min(0.05, max(0.0, instant - time.time())))


def test_one_refresh_reaches_keycloak_for_a_burst_on_three_workers_with_rotation(
    keycloak_admin: KeycloakAdmin, flask_app: ServerProcess, short_lived_client: dict[str, Any]
) -> None:
    client_id = short_lived_client["clientId"]
    with refresh_token_rotation(keycloak_admin), refresh_events(keycloak_admin) as count:
        browser, issued = log_alice_in(flask_app)
        before = count(client_id)
        wait_until(issued + TOKEN_LIFE - MARGIN + 0.2)

        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(lambda _: profile(flask_app, browser), range(BURST)))

        statuses = [answer.status_code for answer, _ in answers]
        deadline = time.monotonic() + 5
        while (after := count(client_id)) == before and time.monotonic() < deadline:
            time.sleep(0.1)  # Keycloak stores its events asynchronously
        time.sleep(0.5)
        after = count(client_id)
        survived, _ = profile(flask_app, browser)
    refreshes = after["REFRESH_TOKEN"] - before["REFRESH_TOKEN"]
    refused = after["REFRESH_TOKEN_ERROR"] - before["REFRESH_TOKEN_ERROR"]
    print(
        f"\n{BURST} concurrent requests at refresh time on 3 workers, rotation on: "
        f"{refreshes} refresh(es) reached Keycloak, {refused} refused, statuses {set(statuses)}"
    )
    assert statuses == [200] * BURST, statuses
    assert refreshes == 1
    assert refused == 0
    assert survived.status_code == 200
    assert "alice" in survived.text
