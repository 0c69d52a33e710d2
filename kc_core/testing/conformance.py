"""The adapter conformance kit: one pytest suite every kc adapter must pass.

It drives the adapter's app over real HTTP, through Keycloak's real login page, so it does
not care which framework is behind the URL. Subclass :class:`AdapterConformance` in your
adapter's tests and say how to serve an app built around a given engine::

    from kc_core.testing.conformance import AdapterConformance, serve_wsgi

    class TestBottleAdapter(AdapterConformance):
        def serve(self, engine):
            return serve_wsgi(make_app(engine))

Serve with :func:`serve_wsgi` or :func:`serve_asgi` (both honour the kit's https run, which
checks ``Secure`` cookies). The app must offer these routes (besides the engine's own under
``/kc``):

========== ============================================================================
``/``       public page, 200
``/public`` public page, 200
``/private`` any logged-in user (``Requirement()``); the body contains the username
``/admin``   realm role ``admin`` (``Requirement(roles=("realm:admin",))``)
========== ============================================================================

Every test runs twice, over a server-side store and over encrypted token cookies (small
chunks, so ``Set-Cookie`` repeats); override the ``kc_store`` fixture to run over your own
store, and ``kc_config`` to point the engine at another realm or client with the same users
and roles. Cookies the app sets must be ``HttpOnly`` and ``SameSite``, and ``Secure`` under
https: configure your framework's session cookie so.

The kit is opt-in: it needs the ``keycloak`` and ``keycloak_admin`` fixtures of
:mod:`kc_core.testing.plugin` (``pip install "kc-core[testing]"``, then
``pytest_plugins = ["kc_core.testing.plugin"]`` in your ``conftest.py`` or ``-p
kc_core.testing.plugin``), and marks its tests ``integration``. Users: ``alice`` is an admin,
``bob`` is not; the client ``kc-web`` of kc's test realm by default.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urljoin, urlsplit

import pytest
import requests

from kc_core import Config
from kc_core.engine import _REFRESH_LINGER, Engine, EngineSettings
from kc_core.oidc import TokenSet
from kc_core.plugins import Plugins, hookimpl
from kc_core.stores import SessionRecord, TokenStore
from kc_core.stores.cookie import CookieTokenStore
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, FormLoginResult, login_with_form
from kc_core.testing.server import KeycloakRealm
from kc_core.testing.serving import https_serving, serve_asgi, serve_wsgi

__all__ = [
    "AdapterConformance",
    "EngineEvents",
    "backchannel_logout_to",
    "chromium",
    "serve_asgi",
    "serve_wsgi",
    "wait_for",
]

_CLIENT_ID = "kc-web"
_TIMEOUT = 15.0
_LOCK_FILE = os.path.join(tempfile.gettempdir(), "kc-test-backchannel-url.lock")
_TOKEN_COOKIE = "kc_conformance_tokens"
# Small chunks: Keycloak's tokens then need several cookies, so Set-Cookie repeats.
_TOKEN_CHUNK = 1000
# A request the event loop should answer at once, while another one is held in the engine.
_LOOP_ANSWER_WITHIN = 2.0


# -- helpers an adapter's own tests may use too ----------------------------------------------


def wait_for(condition: Callable[[], bool], *, timeout: float = _TIMEOUT, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.05)


@contextlib.contextmanager
def backchannel_logout_to(admin: KeycloakAdmin, realm: str, url: str) -> Iterator[None]:
    """Point kc-web's back-channel logout URL at ``url``, and restore it afterwards.

    Holds a machine-wide file lock meanwhile, so test runs sharing one Keycloak never
    point the URL at each other's apps.
    """
    with open(_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = admin.client(realm, _CLIENT_ID)
            previous = dict(client.get("attributes") or {}).get("backchannel.logout.url", "")
            admin.set_client_attributes(realm, _CLIENT_ID, {"backchannel.logout.url": url})
            try:
                yield
            finally:
                admin.set_client_attributes(realm, _CLIENT_ID, {"backchannel.logout.url": previous})
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def chromium(profile_dir: Path) -> Iterator[Any]:
    """A headless Chromium (Debian's ``chromium`` and ``chromedriver``) through Selenium;
    skips the test when either is missing."""
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(binary).exists() and Path(driver_path).exists()):
        pytest.skip(f"chromium/chromedriver not installed ({binary}, {driver_path})")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile_dir / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_page_load_timeout(_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class EngineEvents:
    """A kc plugin recording the engine's events (logins, refreshes, logouts)."""

    logins: list[TokenSet] = field(default_factory=list)
    refreshes: list[TokenSet] = field(default_factory=list)
    logouts: list[Any] = field(default_factory=list)
    last_tokens_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @hookimpl
    def kc_after_login(self, request: Any, tokens: TokenSet, identity: Any) -> None:
        with self._lock:
            self.logins.append(tokens)
            self.last_tokens_at = time.time()

    @hookimpl
    def kc_after_refresh(self, request: Any, tokens: TokenSet) -> None:
        with self._lock:
            self.refreshes.append(tokens)
            self.last_tokens_at = time.time()

    @hookimpl
    def kc_after_logout(self, request: Any, identity: Any) -> None:
        with self._lock:
            self.logouts.append(identity)

    @property
    def sid(self) -> str:
        """Keycloak's session id of the last login."""
        claims = self.logins[-1].id_claims or {}
        return str(claims["sid"])


class _HeldLogin:
    """A kc plugin holding each login inside the engine until released (the loop check)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def kc_after_login(self, request: Any, tokens: TokenSet, identity: Any) -> None:
        self.entered.set()
        self.release.wait(_TIMEOUT)


class _SetCookies:
    """Records every ``Set-Cookie`` header the app at ``base_url`` answers a browser with."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.base_url = base_url
        self.headers: list[str] = []
        session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.url.startswith(self.base_url):
            # urllib3 keeps repeated headers apart; requests' mapping would join them.
            self.headers.extend(response.raw.headers.getlist("Set-Cookie"))

    def cookies(self) -> list[tuple[str, Any]]:
        """``(name, morsel)`` of each cookie set, deletions left out."""
        found = []
        for header in self.headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                deleted = morsel["max-age"] == "0" or "1970" in morsel["expires"]
                if morsel.value and not deleted:
                    found.append((name, morsel))
        return found


def _app_cookies(session: requests.Session, base_url: str) -> set[tuple[str, str | None]]:
    host = urlsplit(base_url).hostname
    return {(c.name, c.value) for c in session.cookies if c.domain.lstrip(".") == host}


# -- the suite ------------------------------------------------------------------------------------


@pytest.mark.integration
class AdapterConformance:
    """The conformance suite; subclass it (name the subclass ``Test...``) and define ``serve``."""

    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        """Serve the adapter's app built around ``engine``; the context yields its base URL."""
        raise NotImplementedError("define serve(engine) in your conformance test class")

    def make_plugins(self) -> Plugins:
        """The plugin manager of the engine: by default every installed adapter (entry points).

        Keep the default: it checks that your adapter's entry point works.
        """
        return Plugins()

    # -- fixtures ---------------------------------------------------------------------------

    @pytest.fixture(params=["memory", "cookie"])
    def kc_store(self, request: pytest.FixtureRequest) -> TokenStore | CookieTokenStore:
        """The engine's token store: in memory, then encrypted token cookies.

        Override in your class to run the suite over your own store.
        """
        if request.param == "cookie":
            return CookieTokenStore(
                "kc-conformance-cookie-secret", name=_TOKEN_COOKIE, chunk_size=_TOKEN_CHUNK
            )
        return MemoryTokenStore()

    @pytest.fixture
    def kc_config(self, keycloak: KeycloakRealm) -> Config:
        """The engine's client: ``kc-web`` of the test realm. Override for another one."""
        return Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id=_CLIENT_ID,
            client_secret=keycloak.client(_CLIENT_ID).secret,
        )

    @pytest.fixture
    def kc_events(self) -> EngineEvents:
        return EngineEvents()

    @pytest.fixture
    def kc_make_engine(
        self,
        kc_config: Config,
        kc_store: TokenStore | CookieTokenStore,
        kc_events: EngineEvents,
    ) -> Callable[..., Engine]:
        def make(**settings: Any) -> Engine:
            plugins = self.make_plugins()
            plugins.register(kc_events, name="kc-conformance-events")
            return Engine(
                kc_config, plugins=plugins, store=kc_store, settings=EngineSettings(**settings)
            )

        return make

    @pytest.fixture
    def kc_engine(self, kc_make_engine: Callable[..., Engine]) -> Engine:
        return kc_make_engine()

    @pytest.fixture
    def app_url(self, kc_engine: Engine) -> Iterator[str]:
        with self.serve(kc_engine) as url:
            yield url.rstrip("/")

    @pytest.fixture
    def browser(self) -> Iterator[requests.Session]:
        session = BrowserSession()
        yield session
        session.close()

    # -- login round trip ---------------------------------------------------------------------

    def test_login_round_trip_lands_on_the_page_first_asked_for(
        self, app_url: str, browser: requests.Session, kc_events: EngineEvents
    ) -> None:
        first = browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT)
        assert first.status_code in (302, 303)
        assert urlsplit(urljoin(first.url, first.headers["Location"])).path == "/kc/login"
        result = login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        assert result.response.status_code == 200
        assert result.url == f"{app_url}/private"
        assert "alice" in result.response.text
        assert len(kc_events.logins) == 1

    def test_session_keeps_the_user_and_never_holds_tokens_in_cookies(
        self, app_url: str, browser: requests.Session, kc_events: EngineEvents
    ) -> None:
        login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        for _ in range(3):
            again = browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT)
            assert again.status_code == 200
            assert "alice" in again.text
        tokens = kc_events.logins[-1]
        secrets = [t for t in (tokens.access_token, tokens.refresh_token, tokens.id_token) if t]
        for cookie in browser.cookies:
            assert not any(secret in (cookie.value or "") for secret in secrets), cookie.name

    def test_session_cookie_changes_at_login(
        self, app_url: str, browser: requests.Session, kc_engine: Engine
    ) -> None:
        start = browser.get(
            f"{app_url}/kc/login?next=/private", allow_redirects=False, timeout=_TIMEOUT
        )
        assert start.status_code == 302
        host = urlsplit(app_url).hostname
        before = {(c.name, c.value) for c in browser.cookies if c.domain.lstrip(".") == host}
        login_with_form(start.headers["Location"], "alice", "alice-password", session=browser)
        after = {(c.name, c.value) for c in browser.cookies if c.domain.lstrip(".") == host}
        assert before, "the app keeps the pending login in a session cookie"
        if kc_engine.cookies is not None:
            # The login lives in new token cookies; the engine rotates no session id then.
            fresh = {name for name, _ in after - before}
            assert any(name.startswith(kc_engine.cookies.name) for name in fresh)
            return
        assert not before & after, "a cookie value from before login survived it (fixation)"

    def test_login_refuses_an_open_redirect(self, app_url: str, browser: requests.Session) -> None:
        for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
            browser.cookies.clear()
            result = login_with_form(
                f"{app_url}/kc/login?next={quote(target, safe='')}",
                "alice",
                "alice-password",
                session=browser,
            )
            assert result.url == f"{app_url}/", target

    def test_two_tabs_logging_in_at_once_both_land(
        self, app_url: str, browser: requests.Session
    ) -> None:
        tab_a = browser.get(
            f"{app_url}/kc/login?next=/public", allow_redirects=False, timeout=_TIMEOUT
        )
        tab_b = browser.get(
            f"{app_url}/kc/login?next=/private", allow_redirects=False, timeout=_TIMEOUT
        )
        callback = f"{app_url}/kc/callback"
        done_a = login_with_form(
            tab_a.headers["Location"], "alice", "alice-password", session=browser, stop_at=callback
        )
        done_b = login_with_form(
            tab_b.headers["Location"], "alice", "alice-password", session=browser, stop_at=callback
        )
        landed_b = browser.get(done_b.url, allow_redirects=False, timeout=_TIMEOUT)
        landed_a = browser.get(done_a.url, allow_redirects=False, timeout=_TIMEOUT)
        assert landed_b.headers["Location"].endswith("/private")
        assert landed_a.headers["Location"].endswith("/public")

    def test_callback_with_missing_wrong_or_reused_state_is_a_400(
        self, app_url: str, browser: requests.Session
    ) -> None:
        done = _log_in_up_to_callback(app_url, browser)
        code = done.code
        assert code is not None
        missing = browser.get(
            f"{app_url}/kc/callback?code={code}", allow_redirects=False, timeout=_TIMEOUT
        )
        wrong = browser.get(f"{app_url}/kc/callback?code={code}&state=forged")
        assert (missing.status_code, wrong.status_code) == (400, 400)
        first = browser.get(done.url, allow_redirects=False, timeout=_TIMEOUT)
        assert first.status_code == 302
        reused = browser.get(done.url, allow_redirects=False, timeout=_TIMEOUT)
        assert reused.status_code == 400

    # -- bearer tokens ------------------------------------------------------------------------

    def test_bearer_requests_get_401_403_200(self, app_url: str, kc_engine: Engine) -> None:
        alice = kc_engine.client.password_grant("alice", "alice-password").access_token
        bob = kc_engine.client.password_grant("bob", "bob-password").access_token

        def get(path: str, token: str | None, **headers: str) -> requests.Response:
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            return requests.get(
                f"{app_url}{path}", headers=headers, allow_redirects=False, timeout=_TIMEOUT
            )

        missing = get("/private", None, Accept="application/json")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
        bad = get("/private", "not-a-token")
        assert bad.status_code == 401
        challenge = bad.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="kc-test", error="invalid_token", ')
        assert 'error_description="' in challenge
        assert bad.headers["Content-Type"].startswith("application/json")
        assert get("/private", alice).status_code == 200
        forbidden = get("/admin", bob)
        assert forbidden.status_code == 403
        assert forbidden.json()["error"] == "forbidden"
        assert get("/admin", alice).status_code == 200

    def test_browsers_are_redirected_and_api_clients_get_json(self, app_url: str) -> None:
        browser = requests.get(
            f"{app_url}/private",
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=_TIMEOUT,
        )
        assert browser.status_code == 302
        xhr = requests.get(
            f"{app_url}/private", headers={"X-Requested-With": "XMLHttpRequest"}, timeout=_TIMEOUT
        )
        assert xhr.status_code == 401
        assert xhr.json()["error"] == "unauthorized"

    def test_browser_without_the_role_gets_403(
        self, app_url: str, browser: requests.Session
    ) -> None:
        login_with_form(f"{app_url}/private", "bob", "bob-password", session=browser)
        assert (
            browser.get(f"{app_url}/admin", allow_redirects=False, timeout=_TIMEOUT).status_code
            == 403
        )

    # -- refresh --------------------------------------------------------------------------------

    def test_silent_refresh_happens_once_for_concurrent_requests(
        self,
        kc_make_engine: Callable[..., Engine],
        kc_events: EngineEvents,
        browser: requests.Session,
    ) -> None:
        # Tokens live 300 s: with a 299.5 s margin they need a refresh half a second after
        # they were issued, and fresh ones do not for the next half second.
        engine = kc_make_engine(refresh_margin=299.5)
        with self.serve(engine) as url:
            login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
            before = len(kc_events.refreshes)
            issued = kc_events.last_tokens_at
            # On a slow machine the landing request may already have refreshed; that result
            # answers the session for the engine's linger, so let it pass first.
            settle = 0.6 + (_REFRESH_LINGER if before else 0.0)
            wait_for(lambda: time.time() > issued + settle, what="the token to enter the margin")
            with ThreadPoolExecutor(6) as pool:
                answers = list(
                    pool.map(
                        lambda _: browser.get(
                            f"{url}/private", allow_redirects=False, timeout=_TIMEOUT
                        ),
                        range(6),
                    )
                )
        assert [a.status_code for a in answers] == [200] * 6
        assert len(kc_events.refreshes) - before == 1

    # -- what adapters typically get wrong ------------------------------------------------------

    def test_every_set_cookie_header_reaches_the_browser(
        self, app_url: str, browser: requests.Session, kc_engine: Engine
    ) -> None:
        done = _log_in_up_to_callback(app_url, browser)
        landed = browser.get(done.url, allow_redirects=False, timeout=_TIMEOUT)
        assert landed.status_code == 302
        set_cookies = landed.raw.headers.getlist("Set-Cookie")
        if kc_engine.cookies is not None:
            token_cookies = [h for h in set_cookies if h.startswith(kc_engine.cookies.name)]
            assert len(token_cookies) >= 2, "the kit's premise: the tokens need several cookies"
            names = {name for name, _ in _app_cookies(browser, app_url)}
            missing = [h.split("=", 1)[0] for h in token_cookies if h.split("=", 1)[0] not in names]
            assert not missing, f"Set-Cookie headers lost (set, not added?): {missing}"
        page = browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT)
        assert page.status_code == 200, "logged in, the browser must see /private"
        assert "alice" in page.text

    def test_cookies_the_app_sets_are_httponly_and_samesite(
        self, app_url: str, browser: requests.Session
    ) -> None:
        recorded = _SetCookies(browser, app_url)
        login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT)
        cookies = recorded.cookies()
        assert cookies, "the app keeps its session in a cookie"
        for name, morsel in cookies:
            assert morsel["httponly"], f"cookie {name} lacks HttpOnly"
            assert morsel["samesite"].lower() in ("lax", "strict"), f"cookie {name}: SameSite"

    def test_cookies_are_secure_and_urls_https_when_served_over_https(
        self, kc_make_engine: Callable[..., Engine]
    ) -> None:
        engine = kc_make_engine()
        with https_serving() as tls, self.serve(engine) as url:
            if not url.startswith("https:"):
                pytest.skip("serve() does not use the kit's serve_wsgi / serve_asgi")
            with BrowserSession() as browser:
                recorded = _SetCookies(browser, url)
                # Per request: a session's own verify loses to REQUESTS_CA_BUNDLE.
                start = browser.get(
                    f"{url}/kc/login?next=/private",
                    allow_redirects=False,
                    timeout=_TIMEOUT,
                    verify=str(tls.ca_file),
                )
        assert start.status_code == 302
        redirect_uri = parse_qs(urlsplit(start.headers["Location"]).query)["redirect_uri"][0]
        assert redirect_uri == f"{url}/kc/callback", "the URL hook must keep the https scheme"
        cookies = recorded.cookies()
        assert cookies, "the pending login lives in a session cookie"
        for name, morsel in cookies:
            assert morsel["secure"], f"cookie {name} lacks Secure under https"

    def test_refreshed_token_cookies_reach_the_browser(
        self,
        kc_make_engine: Callable[..., Engine],
        kc_events: EngineEvents,
        browser: requests.Session,
    ) -> None:
        # As in the concurrent-refresh test: tokens need a refresh half a second after issue.
        engine = kc_make_engine(refresh_margin=299.5)
        with self.serve(engine) as url:
            login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
            issued = kc_events.last_tokens_at
            settle = 0.6 + (_REFRESH_LINGER if kc_events.refreshes else 0.0)
            wait_for(lambda: time.time() > issued + settle, what="the token to enter the margin")
            before = _app_cookies(browser, url)
            refreshes = len(kc_events.refreshes)
            refreshed = browser.get(f"{url}/private", allow_redirects=False, timeout=_TIMEOUT)
            assert refreshed.status_code == 200
            assert len(kc_events.refreshes) == refreshes + 1, "the request refreshed the tokens"
            if engine.cookies is not None:
                after = _app_cookies(browser, url)
                assert before != after, "the refreshed token cookies never reached the browser"
            following = browser.get(f"{url}/private", allow_redirects=False, timeout=_TIMEOUT)
        assert following.status_code == 200
        assert "alice" in following.text

    def test_a_repeated_query_parameter_counts_by_its_first_value(
        self, app_url: str, browser: requests.Session
    ) -> None:
        result = login_with_form(
            f"{app_url}/kc/login?next=/private&next=/public",
            "alice",
            "alice-password",
            session=browser,
        )
        assert result.url == f"{app_url}/private"

    def test_login_lands_on_the_page_with_its_query_string(
        self, app_url: str, browser: requests.Session
    ) -> None:
        page = f"{app_url}/private?tab=2&q=a+b"
        result = login_with_form(page, "alice", "alice-password", session=browser)
        assert result.url == page
        assert result.response.status_code == 200

    def test_logout_clears_the_session_cookie(
        self, app_url: str, browser: requests.Session
    ) -> None:
        login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        before = _app_cookies(browser, app_url)
        out = browser.post(f"{app_url}/kc/logout", allow_redirects=False, timeout=_TIMEOUT)
        assert out.status_code == 302
        # Keycloak on the same loopback host sets its own cookies (path /realms/...): not the app's.
        survivors = {
            (name, value)
            for name, value in before & _app_cookies(browser, app_url)
            if not any(c.name == name and c.path.startswith("/realms/") for c in browser.cookies)
        }
        assert not survivors, f"cookies of the ended session survived logout: {survivors}"

    def test_the_event_loop_is_free_while_the_engine_waits(
        self, kc_make_engine: Callable[..., Engine], browser: requests.Session
    ) -> None:
        engine = kc_make_engine()
        held = _HeldLogin()
        engine.plugins.register(held, name="kc-conformance-held-login")
        with self.serve(engine) as url, ThreadPoolExecutor(1) as pool:
            login = pool.submit(
                login_with_form, f"{url}/private", "alice", "alice-password", session=browser
            )
            try:
                assert held.entered.wait(_TIMEOUT), "the login never reached the engine"
                started = time.monotonic()
                try:
                    answer = requests.get(f"{url}/public", timeout=_LOOP_ANSWER_WITHIN)
                except requests.Timeout:
                    pytest.fail(
                        "a page went unanswered while a login was in the engine: the adapter "
                        "runs blocking engine calls on its event loop (use AsyncEngine)"
                    )
                waited = time.monotonic() - started
            finally:
                held.release.set()
            assert login.result(_TIMEOUT).url == f"{url}/private"
        assert answer.status_code == 200
        assert waited < _LOOP_ANSWER_WITHIN

    # -- logout -----------------------------------------------------------------------------------

    def test_logout_must_be_a_post(self, app_url: str, browser: requests.Session) -> None:
        login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        assert (
            browser.get(f"{app_url}/kc/logout", allow_redirects=False, timeout=_TIMEOUT).status_code
            == 405
        )
        assert (
            browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT).status_code
            == 200
        )

    def test_logout_ends_the_keycloak_session_too(
        self,
        app_url: str,
        browser: requests.Session,
        keycloak: KeycloakRealm,
        keycloak_admin: KeycloakAdmin,
        kc_events: EngineEvents,
    ) -> None:
        login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        sid = kc_events.sid
        assert _has_session(keycloak_admin, keycloak.realm, "alice", sid)
        out = browser.post(f"{app_url}/kc/logout", allow_redirects=False, timeout=_TIMEOUT)
        assert out.status_code == 302
        end_session = out.headers["Location"]
        assert end_session.startswith(f"{keycloak.issuer}/protocol/openid-connect/logout")
        assert "id_token_hint" in parse_qs(urlsplit(end_session).query)
        final = browser.get(end_session)
        assert final.url.rstrip("/") == app_url
        assert not _has_session(keycloak_admin, keycloak.realm, "alice", sid)
        assert (
            browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT).status_code
            == 302
        )

    def test_backchannel_logout_ends_the_app_session(
        self,
        app_url: str,
        browser: requests.Session,
        keycloak: KeycloakRealm,
        keycloak_admin: KeycloakAdmin,
        kc_events: EngineEvents,
    ) -> None:
        with backchannel_logout_to(
            keycloak_admin, keycloak.realm, f"{app_url}/kc/backchannel-logout"
        ):
            login_with_form(f"{app_url}/private", "carol", "carol-password", session=browser)
            assert (
                browser.get(
                    f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT
                ).status_code
                == 200
            )
            keycloak_admin.delete_session(keycloak.realm, kc_events.sid)
            wait_for(
                lambda: (
                    browser.get(
                        f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT
                    ).status_code
                    == 302
                ),
                what="the back-channel logout to end the app's session",
            )

    def test_backchannel_logout_refuses_a_forged_token(self, app_url: str) -> None:
        forged = requests.post(
            f"{app_url}/kc/backchannel-logout",
            data={"logout_token": "e30.e30.e30"},
            timeout=_TIMEOUT,
        )
        assert forged.status_code == 400
        assert forged.json()["error"] == "invalid_request"
        missing = requests.post(f"{app_url}/kc/backchannel-logout", data={}, timeout=_TIMEOUT)
        assert missing.status_code == 400

    # -- Keycloak as it comes: a default client, a user without roles, misconfigurations --------

    def test_user_without_roles_logs_in_and_is_refused_role_pages(
        self, app_url: str, browser: requests.Session, kc_engine: Engine
    ) -> None:
        # erin has no role at all, so Keycloak's default token for kc-web carries no aud.
        token = kc_engine.client.password_grant("erin", "erin-password").access_token
        assert "aud" not in _claims_of(token)
        result = login_with_form(f"{app_url}/private", "erin", "erin-password", session=browser)
        assert result.response.status_code == 200
        assert "erin" in result.response.text
        again = browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT)
        assert again.status_code == 200
        admin = browser.get(f"{app_url}/admin", allow_redirects=False, timeout=_TIMEOUT)
        assert admin.status_code == 403

    def test_default_clients_own_tokens_pass_its_bearer_endpoints(
        self, app_url: str, kc_engine: Engine
    ) -> None:
        for user in ("carol", "erin"):
            token = kc_engine.client.password_grant(user, f"{user}-password").access_token
            # The realm's kc-web has no audience mapper: kc-web is not in the token's aud.
            assert _CLIENT_ID not in _audiences_of(token), user
            answer = requests.get(
                f"{app_url}/private",
                headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False,
                timeout=_TIMEOUT,
            )
            assert answer.status_code == 200, (user, answer.text)

    def test_token_of_another_client_is_refused_naming_its_azp_and_aud(
        self, app_url: str, keycloak: KeycloakRealm, caplog: pytest.LogCaptureFixture
    ) -> None:
        service = keycloak.client("kc-service")
        answer = requests.post(
            keycloak.token_url,
            data={"grant_type": "client_credentials"},
            auth=(service.client_id, service.secret or ""),
            timeout=_TIMEOUT,
        )
        token = answer.json()["access_token"]
        with caplog.at_level("WARNING", logger="kc_core.engine"):
            refused = requests.get(
                f"{app_url}/private",
                headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False,
                timeout=_TIMEOUT,
            )
        assert refused.status_code == 401
        challenge = refused.headers["WWW-Authenticate"]
        assert challenge.isascii()
        assert "azp='kc-service'" in challenge
        assert "aud=" in challenge
        assert "KEYCLOAK_AUTHORIZED_PARTIES=kc-service" in refused.json()["error_description"]
        assert any("azp='kc-service'" in r.getMessage() for r in caplog.records)

    def test_a_login_whose_tokens_are_refused_ends_on_an_error_page(
        self,
        keycloak: KeycloakRealm,
        browser: requests.Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # Misconfigured on purpose: Keycloak signs with RS256, the app allows only ES256.
        engine = self._engine(keycloak, algorithms=("ES256",))
        with self.serve(engine) as url, caplog.at_level("WARNING", logger="kc_core.engine"):
            result = login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        page = result.response
        assert page.status_code == 401
        assert urlsplit(page.url).path == "/kc/callback"  # no way back to Keycloak from here
        assert "Login refused" in page.text
        assert "alg" in page.text.lower()  # the page names the check that refused
        assert any("login refused" in r.getMessage() for r in caplog.records)

    def test_two_processes_with_the_memory_store_end_on_an_error_page(
        self,
        keycloak: KeycloakRealm,
        browser: requests.Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # Two engines, each with its own memory store, behind one host: two worker processes.
        first, second = self._engine(keycloak), self._engine(keycloak)
        with self.serve(first) as url_a, self.serve(second) as url_b:
            login_with_form(f"{url_a}/private", "alice", "alice-password", session=browser)
            with caplog.at_level("WARNING", logger="kc_core.engine"):
                other = browser.get(f"{url_b}/private", timeout=_TIMEOUT)
        assert len(other.history) <= 4
        if other.status_code == 200:
            # This framework's sessions are per app (e.g. a secret each): the second one
            # simply logged in on its own, which is no loop.
            assert "alice" in other.text
        else:
            assert other.status_code == 401
            assert "memory token store" in other.text
            assert any("memory token store" in r.getMessage() for r in caplog.records)

    def test_sessions_that_never_stick_stop_after_three_logins(
        self,
        keycloak: KeycloakRealm,
        browser: requests.Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # A store that loses every session at once (as an evicting cache would).
        engine = self._engine(keycloak, store=_ForgetfulStore())
        with self.serve(engine) as url, caplog.at_level("WARNING", logger="kc_core.engine"):
            result = login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        assert result.response.status_code == 401
        assert "Login loop stopped" in result.response.text
        assert len(result.response.history) < 12
        assert any("stopped a login loop" in r.getMessage() for r in caplog.records)

    @pytest.mark.parametrize(("username", "is_admin"), [("alice", True), ("erin", False)])
    def test_a_real_browser_logs_in_sees_role_pages_and_logs_out(
        self,
        app_url: str,
        keycloak: KeycloakRealm,
        keycloak_admin: KeycloakAdmin,
        kc_events: EngineEvents,
        tmp_path: Path,
        username: str,
        is_admin: bool,
    ) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as until
        from selenium.webdriver.support.ui import WebDriverWait

        with chromium(tmp_path) as driver:
            wait = WebDriverWait(driver, _TIMEOUT)

            def sign_in() -> None:
                driver.get(f"{app_url}/private")
                wait.until(until.visibility_of_element_located((By.ID, "username")))
                driver.find_element(By.ID, "username").send_keys(username)
                driver.find_element(By.ID, "password").send_keys(f"{username}-password")
                driver.find_element(By.ID, "kc-login").click()
                wait.until(until.url_to_be(f"{app_url}/private"))
                assert username in driver.page_source

            sign_in()
            driver.get(f"{app_url}/admin")
            refused = "You do not have access to this page." in driver.page_source
            assert refused is not is_admin
            # A logout button posts a form: do what it does.
            driver.execute_script(
                "const f = document.createElement('form'); f.method = 'POST';"
                "f.action = arguments[0]; document.body.appendChild(f); f.submit();",
                f"{app_url}/kc/logout",
            )
            wait.until(until.url_to_be(f"{app_url}/"))
            driver.get(f"{app_url}/private")  # logged out of Keycloak too: the form again
            wait.until(until.visibility_of_element_located((By.ID, "username")))

            with backchannel_logout_to(
                keycloak_admin, keycloak.realm, f"{app_url}/kc/backchannel-logout"
            ):
                sign_in()
                keycloak_admin.delete_session(keycloak.realm, kc_events.sid)

                def sent_to_keycloak() -> bool:
                    driver.get(f"{app_url}/private")
                    return bool(driver.current_url.startswith(keycloak.issuer))

                wait_for(sent_to_keycloak, what="the back-channel logout to end the session")

    def _engine(self, keycloak: KeycloakRealm, *, store: Any = None, **config: Any) -> Engine:
        return Engine(
            Config(
                server_url=keycloak.base_url,
                realm=keycloak.realm,
                client_id=_CLIENT_ID,
                client_secret=keycloak.client(_CLIENT_ID).secret,
                **config,
            ),
            plugins=self.make_plugins(),
            store=store,
        )

    # -- trust: the public URL, cross-site logout, the login answer's issuer ---------------------

    def test_public_url_pins_the_callback_url_whatever_the_host(
        self, kc_make_engine: Callable[..., Engine]
    ) -> None:
        with self.serve(kc_make_engine(public_url=_PINNED)) as url:
            for poison in _POISONS:
                start = requests.get(
                    f"{url}/kc/login?next=/private",
                    headers=poison,
                    allow_redirects=False,
                    timeout=_TIMEOUT,
                )
                if start.status_code == 400:  # the framework refused the Host itself
                    continue
                assert start.status_code == 302, poison
                query = parse_qs(urlsplit(start.headers["Location"]).query)
                assert query["redirect_uri"] == [f"{_PINNED}/kc/callback"], poison

    def test_public_url_pins_the_post_logout_url_whatever_the_host(
        self,
        kc_make_engine: Callable[..., Engine],
        browser: requests.Session,
        keycloak: KeycloakRealm,
    ) -> None:
        with self.serve(kc_make_engine(public_url=_PINNED)) as url:
            for poison in _POISONS:
                _login_through(url, browser, "alice")
                # requests matches cookies by a Host header given: send them by hand.
                host = urlsplit(url).hostname
                cookies = "; ".join(
                    f"{c.name}={c.value}" for c in browser.cookies if c.domain.lstrip(".") == host
                )
                out = browser.post(
                    f"{url}/kc/logout",
                    headers={**poison, "Origin": _PINNED, "Cookie": cookies},
                    allow_redirects=False,
                    timeout=_TIMEOUT,
                )
                if out.status_code == 400:  # the framework refused the Host itself
                    browser.post(f"{url}/kc/logout", allow_redirects=False, timeout=_TIMEOUT)
                    continue
                assert out.status_code == 302, poison
                end_session = out.headers["Location"]
                assert end_session.startswith(keycloak.issuer), poison
                query = parse_qs(urlsplit(end_session).query)
                assert query["post_logout_redirect_uri"] == [f"{_PINNED}/"], poison
                back = browser.get(end_session, allow_redirects=False, timeout=_TIMEOUT)
                assert back.status_code == 302
                assert back.headers["Location"] == f"{_PINNED}/"

    def test_logout_refuses_cross_site_requests(
        self, app_url: str, browser: requests.Session
    ) -> None:
        login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
        for signals in (
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            refused = browser.post(
                f"{app_url}/kc/logout", headers=signals, allow_redirects=False, timeout=_TIMEOUT
            )
            assert refused.status_code == 403, signals
        still = browser.get(f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT)
        assert still.status_code == 200
        out = browser.post(
            f"{app_url}/kc/logout",
            headers={"Origin": app_url, "Sec-Fetch-Site": "same-origin"},
            allow_redirects=False,
            timeout=_TIMEOUT,
        )
        assert out.status_code == 302

    def test_callback_refuses_a_wrong_or_missing_issuer(
        self, app_url: str, browser: requests.Session, keycloak: KeycloakRealm
    ) -> None:
        for forged in (f"{keycloak.base_url}/realms/another", None):
            done = _log_in_up_to_callback(app_url, browser)
            query = dict(parse_qsl(urlsplit(done.url).query))
            assert query.get("iss") == keycloak.issuer  # Keycloak sends it (RFC 9207)
            if forged is None:
                del query["iss"]
            else:
                query["iss"] = forged
            answer = browser.get(
                f"{app_url}/kc/callback?{urlencode(query)}",
                allow_redirects=False,
                timeout=_TIMEOUT,
            )
            assert answer.status_code == 401, forged
            assert (
                browser.get(
                    f"{app_url}/private", allow_redirects=False, timeout=_TIMEOUT
                ).status_code
                == 302
            )

    def test_cookie_mode_refuses_a_cookie_saved_before_logout(
        self, keycloak: KeycloakRealm, browser: requests.Session
    ) -> None:
        for mode in ("redirect", "local"):
            plugins = self.make_plugins()
            plugins.register(EngineEvents(), name="kc-conformance-events")
            engine = Engine(
                Config(
                    server_url=keycloak.base_url,
                    realm=keycloak.realm,
                    client_id=_CLIENT_ID,
                    client_secret=keycloak.client(_CLIENT_ID).secret,
                ),
                plugins=plugins,
                store=CookieTokenStore(secret="conformance-cookie-secret-0123456789"),
                settings=EngineSettings(logout_mode=mode),
            )
            with self.serve(engine) as url:
                login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
                saved = requests.Session()
                saved.cookies.update(browser.cookies)
                assert (
                    saved.get(f"{url}/private", allow_redirects=False, timeout=_TIMEOUT).status_code
                    == 200
                )
                out = browser.post(f"{url}/kc/logout", allow_redirects=False, timeout=_TIMEOUT)
                assert out.status_code == 302
                replayed = saved.get(f"{url}/private", allow_redirects=False, timeout=_TIMEOUT)
                assert replayed.status_code == 302, mode
                # A new login (into the same Keycloak session, after a local logout) works.
                again = login_with_form(
                    f"{url}/private", "alice", "alice-password", session=browser
                )
                assert again.url == f"{url}/private", mode
                assert "alice" in again.response.text
                browser.post(f"{url}/kc/logout", allow_redirects=False, timeout=_TIMEOUT)
                saved.close()
            browser.cookies.clear()


class _ForgetfulStore(MemoryTokenStore):
    def set(self, key: str, record: SessionRecord, ttl: float | None) -> None:
        pass


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _audiences_of(token: str) -> list[str]:
    aud = _claims_of(token).get("aud", [])
    return [aud] if isinstance(aud, str) else list(aud)


def _log_in_up_to_callback(app_url: str, browser: requests.Session) -> FormLoginResult:
    """Start a login for ``/private`` and sign alice in; stop before the callback runs."""
    start = browser.get(
        f"{app_url}/kc/login?next=/private", allow_redirects=False, timeout=_TIMEOUT
    )
    return login_with_form(
        start.headers["Location"],
        "alice",
        "alice-password",
        session=browser,
        stop_at=f"{app_url}/kc/callback",
    )


def _has_session(admin: KeycloakAdmin, realm: str, username: str, sid: str) -> bool:
    return any(s.get("id") == sid for s in admin.user_sessions(realm, username))


# An origin nobody serves; Keycloak accepts it as a loopback redirect URI of kc-web.
_PINNED = "http://127.0.0.1:1"
_POISONS = (
    {"Host": "evil.example:9999"},
    {"X-Forwarded-Host": "evil.example:9999", "X-Forwarded-Proto": "https"},
)


def _login_through(url: str, browser: requests.Session, user: str) -> None:
    """Log ``user`` in on the app at ``url`` whose public URL is :data:`_PINNED`.

    Keycloak sends the browser to the pinned callback URL; its query is taken to ``url``.
    """
    start = browser.get(f"{url}/kc/login?next=/private", allow_redirects=False, timeout=_TIMEOUT)
    done = login_with_form(
        start.headers["Location"],
        user,
        f"{user}-password",
        session=browser,
        stop_at=f"{_PINNED}/kc/callback",
    )
    landed = browser.get(
        f"{url}/kc/callback?{urlsplit(done.url).query}", allow_redirects=False, timeout=_TIMEOUT
    )
    assert landed.status_code == 302
    assert browser.get(f"{url}/private", allow_redirects=False, timeout=_TIMEOUT).status_code == 200
