"""The engine driven through the toy adapter against a fake Keycloak on a local socket.

Covers protection (bearer and session), the endpoints' refusals, back-channel logout, the
single-flight silent refresh, Keycloak being unreachable, cookie mode and AsyncEngine.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kc_core import Config
from kc_core.engine import (
    AsyncEngine,
    Engine,
    EngineSettings,
    Identity,
    Requirement,
    safe_return_url,
)
from kc_core.oidc import TokenSet
from kc_core.plugins import Plugins
from kc_core.stores import SessionRecord
from kc_core.stores.cookie import CookieTokenStore
from kc_core.stores.memory import MemoryTokenStore

from .conftest import API_AUDIENCE, ISSUER, WEB_CLIENT, LocalServer, Reply, SigningKey, TokenMinter
from .test_plugins import ToyAdapter, ToyRequest, ToyResponse

SECRET = "a-test-secret-of-enough-length"


@dataclass
class FakeKeycloak:
    """Discovery, keys and a token endpoint on a local server; tokens minted now."""

    server: LocalServer
    minter: TokenMinter

    def config(self, **overrides: Any) -> Config:
        options: dict[str, Any] = {
            "server_url": self.server.url,
            "realm": "shop",
            "client_id": WEB_CLIENT,
            "client_secret": "web-secret",
            "audience": API_AUDIENCE,
            "connect_timeout": 0.5,
            "read_timeout": 0.5,
            "retries": 0,
        }
        options.update(overrides)
        return Config(**options)

    def token(self, **claims: Any) -> str:
        return self.minter.mint(self.minter.access_claims(**claims))

    def tokens(self, *, expires_in: float = 300, **claims: Any) -> TokenSet:
        return TokenSet.from_response(
            {
                "access_token": self.token(**claims),
                "expires_in": expires_in,
                "refresh_token": "refresh-1",
                "refresh_expires_in": 1800,
                "token_type": "Bearer",
            }
        )

    def answer_refresh(self, delay: float = 0.0) -> None:
        body = {
            "access_token": self.token(jti="refreshed"),
            "expires_in": 300,
            "refresh_token": "refresh-2",
            "refresh_expires_in": 1800,
            "token_type": "Bearer",
        }
        self.server.answer("/token", Reply(body, delay=delay))


@pytest.fixture
def fake_keycloak(
    local_server: LocalServer, signing_keys: dict[str, SigningKey], realm_jwks: dict[str, Any]
) -> FakeKeycloak:
    url = local_server.url
    local_server.answer(
        "/realms/shop/.well-known/openid-configuration",
        Reply(
            {
                "issuer": ISSUER,
                "jwks_uri": f"{url}/jwks",
                "authorization_endpoint": f"{url}/auth",
                "token_endpoint": f"{url}/token",
                "end_session_endpoint": f"{url}/logout",
            }
        ),
    )
    local_server.answer("/jwks", Reply(realm_jwks))
    return FakeKeycloak(local_server, TokenMinter(signing_keys, now=time.time()))


@pytest.fixture
def toy_plugins() -> Plugins:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    return plugins


@pytest.fixture
def make_engine(fake_keycloak: FakeKeycloak, toy_plugins: Plugins) -> Callable[..., Engine]:
    def make(store: Any = None, config: Config | None = None, **settings: Any) -> Engine:
        return Engine(
            config or fake_keycloak.config(),
            plugins=toy_plugins,
            store=store,
            settings=EngineSettings(**settings),
        )

    return make


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


def bearer(token: str, path: str = "/private", **headers: str) -> ToyRequest:
    return ToyRequest(url=f"http://app.test{path}", headers={"Authorization": f"Bearer {token}", **headers})


def logged_in(engine: Engine, tokens: TokenSet, path: str = "/private") -> ToyRequest:
    """A request whose session points at ``tokens`` in the engine's store."""
    store = engine.store_for(ToyRequest())
    store.set("key-1", SessionRecord(tokens, sub="user-1", sid="session-1"), None)
    return ToyRequest(url=f"http://app.test{path}", session={"kc": {"key": "key-1"}})


# -- safe_return_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/orders/7?x=1", "/orders/7?x=1"),
        ("http://app.test/orders", "/orders"),
        ("https://evil.example/", None),
        ("//evil.example/", None),
        ("/\\evil.example", None),
        ("\\\\evil.example", None),
        ("http://app.test.evil.example/", None),
        ("javascript:alert(1)", None),
        ("/ok\r\nSet-Cookie: x=1", None),
        ("relative", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_return_url_keeps_the_user_on_this_site(target: str | None, expected: str | None) -> None:
    assert safe_return_url(target, "http://app.test/kc/login") == expected


# -- bearer tokens ----------------------------------------------------------------------------------


def test_a_valid_bearer_token_passes_with_the_built_in_identity(
    engine: Engine, fake_keycloak: FakeKeycloak
) -> None:
    guard = engine.protect(bearer(fake_keycloak.token(preferred_username="alice")))
    assert guard.allowed
    assert isinstance(guard.identity, Identity)
    assert guard.identity.username == "alice"


def test_a_bad_bearer_token_gets_401_with_the_reason(engine: Engine) -> None:
    response = engine.protect(bearer("not.a-token")).response
    assert isinstance(response, ToyResponse)
    assert response.status == 401
    challenge = response.header("WWW-Authenticate") or ""
    assert challenge.startswith('Bearer realm="shop", error="invalid_token", error_description="')
    assert json.loads(response.body)["error"] == "invalid_token"


def test_an_expired_bearer_token_gets_401(engine: Engine, fake_keycloak: FakeKeycloak) -> None:
    token = fake_keycloak.token(exp=int(time.time()) - 3600)
    response = engine.protect(bearer(token)).response
    assert response.status == 401
    assert "expired" in (response.header("WWW-Authenticate") or "")


def test_no_token_from_an_api_client_gets_401_without_error_attribute(engine: Engine) -> None:
    request = ToyRequest(headers={"Accept": "application/json"})
    response = engine.protect(request).response
    assert response.status == 401
    assert response.header("WWW-Authenticate") == 'Bearer realm="shop"'


def test_xhr_without_session_gets_json_401(engine: Engine) -> None:
    response = engine.protect(ToyRequest(headers={"X-Requested-With": "XMLHttpRequest"})).response
    assert (response.status, response.content_type) == (401, "application/json")


def test_a_browser_without_session_is_sent_to_login_with_next(engine: Engine) -> None:
    response = engine.protect(ToyRequest(url="http://app.test/orders?page=2")).response
    assert response.status == 302
    location = urlsplit(response.header("Location") or "")
    assert location.path == "/kc/login"
    assert parse_qs(location.query) == {"next": ["/orders?page=2"]}


def test_a_token_without_the_role_gets_403_and_with_it_passes(
    engine: Engine, fake_keycloak: FakeKeycloak
) -> None:
    needs_admin = Requirement(roles=("realm:admin",))
    plain = fake_keycloak.token(realm_access={"roles": ["user"]})
    admin = fake_keycloak.token(realm_access={"roles": ["user", "admin"]})
    denied = engine.protect(bearer(plain), needs_admin).response
    assert denied.status == 403
    assert 'error="insufficient_scope"' in (denied.header("WWW-Authenticate") or "")
    assert engine.protect(bearer(admin), needs_admin).allowed


def test_any_role_needs_one_of_the_roles(engine: Engine, fake_keycloak: FakeKeycloak) -> None:
    token = fake_keycloak.token(resource_access={"orders-api": {"roles": ["reader"]}})
    one = Requirement(roles=("orders-api:reader", "realm:admin"), any_role=True)
    both = Requirement(roles=("orders-api:reader", "realm:admin"))
    assert engine.protect(bearer(token), one).allowed
    assert engine.protect(bearer(token), both).response.status == 403


def test_scopes_must_all_be_granted(engine: Engine, fake_keycloak: FakeKeycloak) -> None:
    token = fake_keycloak.token(scope="openid profile email")
    assert engine.protect(bearer(token), Requirement(scopes=("profile", "email"))).allowed
    denied = engine.protect(bearer(token), Requirement(scopes=("phone",))).response
    assert denied.status == 403
    assert "scope" in json.loads(denied.body)["error_description"]


def test_bearer_only_refuses_a_session(engine: Engine, fake_keycloak: FakeKeycloak) -> None:
    request = logged_in(engine, fake_keycloak.tokens())
    assert engine.protect(request, Requirement(bearer_only=True)).response.status == 401


def test_exempt_paths_pass_without_anyone(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(exempt_paths=("/health", "/static/"))
    assert engine.protect(ToyRequest(url="http://app.test/health")).allowed
    assert engine.protect(ToyRequest(url="http://app.test/static/app.css")).allowed
    assert engine.protect(ToyRequest(url="http://app.test/healthz")).response.status == 302


# -- sessions -------------------------------------------------------------------------------------


def test_a_session_passes_and_ends_when_its_record_is_gone(
    engine: Engine, fake_keycloak: FakeKeycloak
) -> None:
    request = logged_in(engine, fake_keycloak.tokens(preferred_username="alice"))
    assert engine.protect(request).identity.username == "alice"
    engine.store_for(request).delete("key-1")
    assert engine.protect(request).response.status == 302
    assert "kc" not in request.session


def test_concurrent_requests_of_one_session_refresh_once(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    engine = make_engine(refresh_margin=60)
    fake_keycloak.answer_refresh(delay=0.2)
    expiring = fake_keycloak.tokens(expires_in=30)
    first = logged_in(engine, expiring)
    requests = [ToyRequest(url=first.url, session=first.session) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        guards = list(pool.map(engine.protect, requests))
    assert all(g.allowed for g in guards)
    assert fake_keycloak.server.count("/token") == 1
    record = engine.store_for(first).get("key-1")
    assert record is not None and record.tokens.refresh_token == "refresh-2"


def test_a_dead_refresh_token_ends_the_session(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    engine = make_engine(refresh_margin=60)
    fake_keycloak.server.answer("/token", Reply({"error": "invalid_grant"}, status=400))
    request = logged_in(engine, fake_keycloak.tokens(expires_in=30))
    assert engine.protect(request).response.status == 302
    assert engine.store_for(request).get("key-1") is None


def test_keycloak_unreachable_is_503_json_and_the_session_survives(
    fake_keycloak: FakeKeycloak, toy_plugins: Plugins, closed_port_url: str
) -> None:
    store = MemoryTokenStore()
    down = Engine(fake_keycloak.config(server_url=closed_port_url), plugins=toy_plugins, store=store)
    up = Engine(fake_keycloak.config(), plugins=toy_plugins, store=store)
    request = logged_in(down, fake_keycloak.tokens(preferred_username="alice"))
    response = down.protect(request).response
    assert (response.status, response.content_type) == (503, "application/json")
    assert "unreachable" in json.loads(response.body)["error_description"]
    assert down.login(ToyRequest(url="http://app.test/kc/login")).status == 503
    assert request.session["kc"] == {"key": "key-1"}
    assert up.protect(request).identity.username == "alice"


def test_an_expired_token_with_keycloak_down_is_503_not_a_logout(
    fake_keycloak: FakeKeycloak, toy_plugins: Plugins, closed_port_url: str
) -> None:
    down = Engine(
        fake_keycloak.config(server_url=closed_port_url),
        plugins=toy_plugins,
        settings=EngineSettings(refresh_margin=60),
    )
    request = logged_in(down, fake_keycloak.tokens(expires_in=-5))
    assert down.protect(request).response.status == 503
    assert down.store_for(request).get("key-1") is not None


# -- endpoints --------------------------------------------------------------------------------------


def test_login_redirects_to_keycloak_and_remembers_the_safe_next(engine: Engine) -> None:
    request = ToyRequest(url="http://app.test/kc/login?next=https://evil.example/")
    response = engine.route(request)
    assert response.status == 302
    query = parse_qs(urlsplit(response.header("Location") or "").query)
    assert query["redirect_uri"] == ["http://app.test/kc/callback"]
    assert query["code_challenge_method"] == ["S256"]
    (entry,) = request.session["kc.logins"].values()
    assert entry["next"] == "/"


def test_pending_logins_are_bounded(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(max_pending_logins=2)
    request = ToyRequest(url="http://app.test/kc/login?next=/a")
    for _ in range(4):
        engine.login(request)
    assert len(request.session["kc.logins"]) == 2


@pytest.mark.parametrize("query", ["code=c", "code=c&state=forged", "state=&code=c", ""])
def test_callback_without_a_pending_state_is_400(engine: Engine, query: str) -> None:
    request = ToyRequest(url="http://app.test/kc/login?next=/a")
    engine.login(request)
    request.url = f"http://app.test/kc/callback?{query}"
    assert engine.callback(request).status == 400


def test_callback_state_is_single_use_even_when_the_exchange_fails(
    engine: Engine, fake_keycloak: FakeKeycloak
) -> None:
    fake_keycloak.server.answer("/token", Reply({"error": "invalid_grant"}, status=400))
    request = ToyRequest(url="http://app.test/kc/login?next=/a")
    engine.login(request)
    (state,) = request.session["kc.logins"]
    request.url = f"http://app.test/kc/callback?code=c&state={state}"
    assert engine.callback(request).status == 401
    assert engine.callback(request).status == 400


def test_logout_by_get_is_405_and_cross_site_post_is_403(engine: Engine) -> None:
    get = engine.logout(ToyRequest(url="http://app.test/kc/logout"))
    assert (get.status, get.header("Allow")) == (405, "POST")
    cross = ToyRequest(
        url="http://app.test/kc/logout", method="POST", headers={"Origin": "https://evil.example"}
    )
    assert engine.logout(cross).status == 403


def test_local_logout_forgets_the_session(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    engine = make_engine(logout_mode="local")
    request = logged_in(engine, fake_keycloak.tokens())
    request.method = "POST"
    request.url = "http://app.test/kc/logout"
    assert engine.route(request).header("Location") == "/"
    assert engine.store_for(request).get("key-1") is None
    assert "kc" not in request.session


def test_backchannel_logout_ends_the_named_session_once(
    engine: Engine, fake_keycloak: FakeKeycloak
) -> None:
    request = logged_in(engine, fake_keycloak.tokens())
    logout_token = fake_keycloak.minter.mint(fake_keycloak.minter.logout_claims(aud=WEB_CLIENT))
    post = ToyRequest(
        url="http://app.test/kc/backchannel-logout", method="POST", form={"logout_token": logout_token}
    )
    answer = engine.route(post)
    assert (answer.status, answer.header("Cache-Control")) == (200, "no-store")
    assert engine.protect(request).response.status == 302
    assert engine.route(post).status == 400  # replayed


@pytest.mark.parametrize("form", [{}, {"logout_token": "e30.e30.e30"}])
def test_backchannel_logout_refuses_bad_tokens(engine: Engine, form: dict[str, str]) -> None:
    post = ToyRequest(url="http://app.test/kc/backchannel-logout", method="POST", form=form)
    answer = engine.backchannel_logout(post)
    assert answer.status == 400
    assert json.loads(answer.body)["error"] == "invalid_request"


def test_backchannel_logout_refuses_get(engine: Engine) -> None:
    assert engine.backchannel_logout(ToyRequest(url="http://app.test/kc/backchannel-logout")).status == 405


def test_route_ignores_other_paths(engine: Engine) -> None:
    assert engine.route(ToyRequest(url="http://app.test/kc")) is None
    assert engine.route(ToyRequest(url="http://app.test/kcx/login")) is None
    assert engine.route(ToyRequest(url="http://app.test/kc/unknown")) is None


# -- cookie mode ------------------------------------------------------------------------------------


def cookie_request(store: CookieTokenStore, tokens: TokenSet) -> ToyRequest:
    pairs = store.encode(SessionRecord(tokens, sub="user-1", sid="session-1"))
    return ToyRequest(cookies=dict(pairs))


def test_cookie_mode_reads_the_session_from_cookies(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store)
    request = cookie_request(store, fake_keycloak.tokens(preferred_username="alice"))
    guard = engine.protect(request)
    assert guard.identity.username == "alice"
    assert guard.headers == ()


def test_cookie_mode_refresh_hands_new_cookies_to_the_adapter(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store, refresh_margin=60)
    fake_keycloak.answer_refresh()
    guard = engine.protect(cookie_request(store, fake_keycloak.tokens(expires_in=30)))
    assert guard.allowed
    cookies = dict(
        value.split(";", 1)[0].split("=", 1) for name, value in guard.headers if name == "Set-Cookie"
    )
    record = store.decode(cookies)
    assert record is not None and record.tokens.refresh_token == "refresh-2"


def test_cookie_mode_tampered_cookies_mean_logged_out_and_are_cleared(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store)
    request = cookie_request(store, fake_keycloak.tokens())
    head = request.cookies["kc_tokens"]
    request.cookies["kc_tokens"] = head[:-4] + ("AAAA" if not head.endswith("AAAA") else "BBBB")
    guard = engine.protect(request)
    assert guard.response.status == 302
    assert any(v.startswith("kc_tokens=;") for n, v in guard.response.headers if n == "Set-Cookie")


def test_cookie_mode_backchannel_logout_refuses_the_cookies_after(
    make_engine: Callable[..., Engine], fake_keycloak: FakeKeycloak
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store)
    request = cookie_request(store, fake_keycloak.tokens())
    logout_token = fake_keycloak.minter.mint(fake_keycloak.minter.logout_claims(aud=WEB_CLIENT))
    post = ToyRequest(url="http://app.test/kc/backchannel-logout", method="POST", form={"logout_token": logout_token})
    assert engine.route(post).status == 200
    assert engine.protect(request).response.status == 302


# -- async ----------------------------------------------------------------------------------------


def test_async_engine_never_blocks_the_event_loop(
    fake_keycloak: FakeKeycloak, toy_plugins: Plugins, silent_server_url: str
) -> None:
    engine = AsyncEngine(
        Engine(fake_keycloak.config(server_url=silent_server_url), plugins=toy_plugins)
    )

    async def scenario() -> tuple[int, Any]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        guard = await engine.protect(bearer(fake_keycloak.token()))
        done.set()
        await task
        return ticks, guard

    started = time.monotonic()
    ticks, guard = asyncio.run(scenario())
    elapsed = time.monotonic() - started
    assert guard.response.status == 503  # the silent server timed out (read_timeout 0.5 s)
    assert elapsed >= 0.4
    assert ticks >= 10, "the event loop stalled while Keycloak was slow"


def test_async_engine_answers_a_known_token_on_the_loop(
    engine: Engine, fake_keycloak: FakeKeycloak
) -> None:
    token = fake_keycloak.token(preferred_username="alice")
    engine.protect(bearer(token))  # first sight: validated (in a worker, for async callers)
    assert engine._answers_locally(bearer(token))
    guard = asyncio.run(AsyncEngine(engine).protect(bearer(token)))
    assert guard.identity.username == "alice"
