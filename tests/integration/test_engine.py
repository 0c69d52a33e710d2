"""The engine through the example Bottle adapter against the real Keycloak, beyond the
conformance kit: scopes, client roles, exempt paths, Keycloak going away, cookie mode.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kc_core import Config
from kc_core.engine import Engine, EngineSettings, Requirement
from kc_core.plugins import Plugins
from kc_core.stores.cookie import CookieTokenStore
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import serve_wsgi
from kc_core.testing.server import KeycloakRealm

kc_bottle = pytest.importorskip("kc_bottle", reason="pip install ./examples/bottle_adapter")
from kc_bottle.demo import make_app  # noqa: E402

pytestmark = pytest.mark.integration

SECRET = "integration-secret-of-enough-length"


@pytest.fixture
def make_engine(keycloak: KeycloakRealm) -> Callable[..., Engine]:
    def make(server_url: str | None = None, store: Any = None, **settings: Any) -> Engine:
        config = Config(
            server_url=server_url or keycloak.base_url,
            realm=keycloak.realm,
            client_id="kc-web",
            client_secret="kc-web-secret",
            retries=0,
            connect_timeout=1.0,
        )
        return Engine(config, plugins=Plugins(), store=store, settings=EngineSettings(**settings))

    return make


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with BrowserSession() as session:
        yield session


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@contextlib.contextmanager
def serve(engine: Engine, **options: Any) -> Iterator[tuple[str, Any]]:
    app = make_app(engine, **options)
    plugin = next(p for p in app.plugins if isinstance(p, kc_bottle.KeycloakPlugin))
    with serve_wsgi(app) as url:
        yield url, plugin


def api_get(url: str, token: str | None = None) -> requests.Response:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, headers=headers, allow_redirects=False, timeout=10)


def test_scope_and_client_role_requirements_with_real_tokens(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    alice = engine.client.password_grant("alice", "alice-password").access_token
    carol = engine.client.password_grant("carol", "carol-password").access_token
    with serve(engine) as (url, _):
        assert api_get(f"{url}/api/profile", alice).status_code == 200
        phone = api_get(f"{url}/api/phone", alice)
        assert (phone.status_code, phone.json()["error"]) == (403, "forbidden")
        assert api_get(f"{url}/api/items", alice).json()["user"] == "alice"
        assert api_get(f"{url}/api/items", carol).status_code == 403
        assert api_get(f"{url}/api/items").status_code == 401


def test_exempt_paths_skip_protect_all(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(exempt_paths=("/health",))
    with serve(engine, protect_all=Requirement()) as (url, _):
        assert requests.get(f"{url}/health", allow_redirects=False).status_code == 200
        public = requests.get(f"{url}/public", allow_redirects=False)
        assert public.status_code == 302
        assert "/kc/login?next=%2Fpublic" in public.headers["Location"]


class KeyRecordingStore(MemoryTokenStore):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def set(self, key: str, record: Any, ttl: float | None) -> None:
        if key not in self.written:
            self.written.append(key)
        super().set(key, record, ttl)


def test_a_new_store_key_at_every_login(
    make_engine: Callable[..., Engine], browser: requests.Session
) -> None:
    store = KeyRecordingStore()
    engine = make_engine(store=store)
    with serve(engine) as (url, _):
        login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        login_with_form(f"{url}/kc/login?next=/private", "alice", "alice-password", session=browser)
        assert browser.get(f"{url}/private", allow_redirects=False).status_code == 200
    first, second = store.written
    assert first != second
    assert store.get(first) is None, "the old store key must die at the new login"
    assert store.get(second) is not None


def test_keycloak_unreachable_is_503_and_the_session_survives(
    make_engine: Callable[..., Engine], browser: requests.Session, closed_port_url: str
) -> None:
    store = MemoryTokenStore()
    up = make_engine(store=store)
    down = make_engine(server_url=closed_port_url, store=store)
    with serve(up) as (url, plugin):
        login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        plugin.engine = down  # Keycloak "goes away" for this app
        answer = browser.get(f"{url}/private", allow_redirects=False)
        assert answer.status_code == 503
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.json()["error"] == "temporarily_unavailable"
        assert "unreachable" in answer.json()["error_description"]
        assert browser.get(f"{url}/kc/login?next=/", allow_redirects=False).status_code == 503
        plugin.engine = up  # ... and comes back
        again = browser.get(f"{url}/private", allow_redirects=False)
        assert (again.status_code, again.text) == (200, "hello alice")


def test_cookie_mode_login_refresh_and_logout(
    make_engine: Callable[..., Engine], browser: requests.Session
) -> None:
    engine = make_engine(store=CookieTokenStore(SECRET), logout_mode="local")
    with serve(engine) as (url, _):
        done = login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        assert (done.url, done.response.text) == (f"{url}/private", "hello alice")
        names = {c.name for c in browser.cookies if c.name.startswith("kc_tokens")}
        assert "kc_tokens" in names
        assert all(len(c.value or "") < 4000 for c in browser.cookies)
        assert browser.get(f"{url}/private", allow_redirects=False).status_code == 200
        out = browser.post(f"{url}/kc/logout", allow_redirects=False)
        assert out.status_code == 302
        assert not any(c.name.startswith("kc_tokens") for c in browser.cookies)
        assert browser.get(f"{url}/private", allow_redirects=False).status_code == 302


def test_cookie_mode_silent_refresh_rewrites_the_cookies(
    make_engine: Callable[..., Engine], browser: requests.Session
) -> None:
    engine = make_engine(store=CookieTokenStore(SECRET), refresh_margin=400)
    with serve(engine) as (url, _):
        login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        before = browser.cookies.get("kc_tokens")
        page = browser.get(f"{url}/private", allow_redirects=False)
        assert page.status_code == 200
        assert "kc_tokens=" in page.headers.get("Set-Cookie", "")
        assert browser.cookies.get("kc_tokens") != before
