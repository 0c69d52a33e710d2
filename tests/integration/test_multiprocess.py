"""Two app processes sharing one Redis token store and one browser session cookie.

Alice logs in through Keycloak's real login page on process A; process B, which shares the
app secret and the Redis store, sees her logged in with the same cookie. Keycloak ends the
session and posts the logout token to A only: both A and B must treat the session as ended
within one second. Restarting a process loses no session; a hung Redis answers 503 without
logging anyone out.

The apps run twice: with a minimal WSGI adapter (``apps/wsgi_adapter.py``, signed-cookie
sessions) and with the example Bottle adapter (``examples/bottle_adapter``, its browser
sessions moved to Redis). Each test uses its own copy of the ``kc-web`` client (its
back-channel logout URL points at this module's process A) and ends only its own Keycloak
session, so tests running at the same time against the shared server are not disturbed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from apps.harness import (
    APP_SCRIPT,
    BOTTLE_APP_SCRIPT,
    AppProcess,
    free_port,
    temporary_client,
    wait_for,
)

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.redis_server import RedisServer
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

REALM = "kc-test"
LOGOUT_DEADLINE = 1.0


@pytest.fixture(scope="module")
def app_ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="module")
def web_client(
    keycloak_admin: KeycloakAdmin, app_ports: tuple[int, int]
) -> Iterator[dict[str, Any]]:
    backchannel = f"http://127.0.0.1:{app_ports[0]}/kc/backchannel-logout"
    with temporary_client(
        keycloak_admin, REALM, "kc-web", **{"backchannel.logout.url": backchannel}
    ) as client:
        yield client


@pytest.fixture(scope="module", params=["wsgi", "bottle"])
def apps(
    request: pytest.FixtureRequest,
    keycloak: KeycloakRealm,
    redis_server: RedisServer,
    web_client: dict[str, Any],
    app_ports: tuple[int, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AppProcess, AppProcess]]:
    if request.param == "bottle":
        pytest.importorskip("kc_bottle", reason="pip install -e examples/bottle_adapter")
    script = BOTTLE_APP_SCRIPT if request.param == "bottle" else APP_SCRIPT
    log_dir = tmp_path_factory.mktemp("apps")
    args = [
        "--secret", "shared-app-secret",
        "--redis-url", redis_server.url,
        "--server-url", keycloak.base_url,
        "--tenant", f"web={REALM},{web_client['clientId']},{web_client['secret']}",
    ]  # fmt: skip
    a = AppProcess(args, port=app_ports[0], log_dir=log_dir, script=script)
    b = AppProcess(args, port=app_ports[1], log_dir=log_dir, script=script)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def me(app: AppProcess, browser: requests.Session) -> requests.Response:
    return browser.get(f"{app.url}/me", headers={"Accept": "application/json"}, timeout=5)


def log_alice_in(keycloak: KeycloakRealm, app: AppProcess) -> tuple[BrowserSession, dict[str, Any]]:
    browser = BrowserSession()
    alice = keycloak.user("alice")
    result = login_with_form(
        f"{app.url}/kc/login?next=/me", alice.username, alice.password, session=browser
    )
    assert result.response.status_code == 200, result.response.text
    body: dict[str, Any] = result.response.json()
    assert body["username"] == "alice"
    return browser, body


def test_a_session_started_on_one_process_is_valid_on_the_other(
    keycloak: KeycloakRealm, apps: tuple[AppProcess, AppProcess]
) -> None:
    a, b = apps
    browser, on_a = log_alice_in(keycloak, a)

    on_b = me(b, browser)

    assert on_b.status_code == 200, on_b.text
    assert on_b.json()["sid"] == on_a["sid"]
    assert on_b.json()["pid"] != on_a["pid"], "two separate processes answered"


def test_backchannel_logout_posted_to_one_process_ends_the_session_on_both(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    apps: tuple[AppProcess, AppProcess],
    redis_server: RedisServer,
) -> None:
    a, b = apps
    browser, on_a = log_alice_in(keycloak, a)
    assert me(b, browser).status_code == 200
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert raw.keys(f"*:sid:{on_a['sid']}"), "the session is indexed by its Keycloak sid"

    # Keycloak posts a logout_token to A's back-channel URL (the client's only one).
    start = time.monotonic()
    keycloak_admin.delete_session(REALM, on_a["sid"])
    admin_call = time.monotonic() - start
    wait_for(
        lambda: me(a, browser).status_code == 401 and me(b, browser).status_code == 401,
        timeout=5.0,
        what="session ended on A and B",
    )
    elapsed = time.monotonic() - start

    print(
        f"\nback-channel logout: admin call {admin_call * 1000:.0f} ms, "
        f"session ended on both processes {elapsed * 1000:.0f} ms after it started"
    )
    assert elapsed < LOGOUT_DEADLINE
    assert raw.keys(f"*:sid:{on_a['sid']}") == []
    assert me(b, browser).status_code == 401, "B stays logged out"
    raw.close()


def test_restarting_a_process_loses_no_session(
    keycloak: KeycloakRealm, apps: tuple[AppProcess, AppProcess]
) -> None:
    a, b = apps
    browser, on_a = log_alice_in(keycloak, a)
    assert me(b, browser).status_code == 200
    old_pid = me(b, browser).json()["pid"]

    b.kill()  # no graceful shutdown: nothing may depend on it
    b.start()

    again = me(b, browser)
    assert again.status_code == 200, again.text
    assert again.json()["pid"] != old_pid
    assert again.json()["sid"] == on_a["sid"]


def test_a_hung_redis_answers_503_and_keeps_the_session(
    keycloak: KeycloakRealm, apps: tuple[AppProcess, AppProcess], redis_server: RedisServer
) -> None:
    a, b = apps
    if a.script == BOTTLE_APP_SCRIPT:
        pytest.skip("the Bottle app keeps its browser sessions in the same Redis: it fails first")
    browser, _ = log_alice_in(keycloak, a)
    redis_server.pause()
    try:
        start = time.monotonic()
        during = me(b, browser)
        took = time.monotonic() - start
    finally:
        redis_server.resume()
    print(f"\nhung Redis: {during.status_code} after {took * 1000:.0f} ms")
    assert during.status_code == 503, during.text
    assert during.json()["error"] == "temporarily_unavailable"
    assert took < 5.0
    assert me(b, browser).status_code == 200, "the session survived the outage"
