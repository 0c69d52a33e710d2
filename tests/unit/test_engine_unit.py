"""The engine where no Keycloak is involved: the toy adapter, and a Keycloak that is absent.

What needs Keycloak's answers (tokens, refreshes, logins, logout tokens) is tested against the
real server in ``tests/integration/test_engine_behaviour.py``. Here: the open-redirect guard,
answers given before any call to Keycloak (no token, refused methods, exempt paths, routing),
AsyncEngine keeping the event loop free while Keycloak stays silent, and the core importing
without any web framework.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from toy_adapter import ToyAdapter, ToyRequest

from kc_core import Config
from kc_core.engine import (
    AsyncEngine,
    CookieSessions,
    Engine,
    EngineSettings,
    Identity,
    RequestHeaders,
    Requirement,
    ServerSessions,
    SessionBackend,
    safe_return_url,
)
from kc_core.engine.context import mount_path
from kc_core.plugins import Plugins
from kc_core.stores.cookie import CookieTokenStore

# Nothing listens on the discard port: a test that reached Keycloak would get a 503, not pass.
NO_KEYCLOAK = "http://127.0.0.1:9"


def absent_keycloak(server_url: str = NO_KEYCLOAK) -> Config:
    return Config(
        server_url=server_url,
        realm="shop",
        client_id="orders-web",
        client_secret="web-secret",
        connect_timeout=0.5,
        read_timeout=0.5,
        retries=0,
    )


@pytest.fixture
def toy_plugins() -> Plugins:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    return plugins


@pytest.fixture
def make_engine(toy_plugins: Plugins) -> Callable[..., Engine]:
    def make(config: Config | None = None, **settings: Any) -> Engine:
        return Engine(
            config or absent_keycloak(), plugins=toy_plugins, settings=EngineSettings(**settings)
        )

    return make


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


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
def test_safe_return_url_keeps_the_user_on_this_site(
    target: str | None, expected: str | None
) -> None:
    assert safe_return_url(target, "http://app.test/kc/login") == expected


# -- answers given before any call to Keycloak ------------------------------------------------


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


def test_behind_a_path_prefix_the_login_redirect_stays_under_it(engine: Engine) -> None:
    request = ToyRequest(url="http://app.test/app/orders?page=2", script_name="/app")
    location = urlsplit(engine.protect(request).response.header("Location") or "")
    assert location.path == "/app/kc/login"
    assert parse_qs(location.query) == {"next": ["/app/orders?page=2"]}


@pytest.mark.parametrize(
    ("url", "path", "mount"),
    [
        ("http://app.test/kc/login", "/kc/login", ""),
        ("http://app.test/app/kc/login?x=1", "/kc/login", "/app"),
        ("http://app.test/a%20b/", "/", "/a%20b"),
        ("http://app.test/shop/app/", "/app/", "/shop"),
        ("http://app.test/other", "/kc/login", ""),  # not a suffix: no mount point guessed
    ],
)
def test_mount_path_is_the_url_path_before_the_apps_own(url: str, path: str, mount: str) -> None:
    assert mount_path(url, path) == mount


def test_exempt_paths_pass_without_anyone(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(exempt_paths=("/health", "/static/"))
    assert engine.protect(ToyRequest(url="http://app.test/health")).allowed
    assert engine.protect(ToyRequest(url="http://app.test/static/app.css")).allowed
    assert engine.protect(ToyRequest(url="http://app.test/healthz")).response.status == 302


def test_logout_by_get_is_405_and_cross_site_post_is_403(engine: Engine) -> None:
    get = engine.logout(ToyRequest(url="http://app.test/kc/logout"))
    assert (get.status, get.header("Allow")) == (405, "POST")
    cross = ToyRequest(
        url="http://app.test/kc/logout", method="POST", headers={"Origin": "https://evil.example"}
    )
    assert engine.logout(cross).status == 403


def test_backchannel_logout_without_a_token_is_400(engine: Engine) -> None:
    post = ToyRequest(url="http://app.test/kc/backchannel-logout", method="POST")
    answer = engine.backchannel_logout(post)
    assert answer.status == 400
    assert json.loads(answer.body)["error"] == "invalid_request"


def test_backchannel_logout_refuses_get(engine: Engine) -> None:
    assert (
        engine.backchannel_logout(ToyRequest(url="http://app.test/kc/backchannel-logout")).status
        == 405
    )


def test_route_ignores_other_paths(engine: Engine) -> None:
    assert engine.route(ToyRequest(url="http://app.test/kc")) is None
    assert engine.route(ToyRequest(url="http://app.test/kcx/login")) is None
    assert engine.route(ToyRequest(url="http://app.test/kc/unknown")) is None


# -- async --------------------------------------------------------------------------------------


def test_async_engine_never_blocks_the_event_loop(
    make_engine: Callable[..., Engine], silent_server_url: str
) -> None:
    # A socket that accepts and never answers: Keycloak hanging, not a stand-in for it.
    engine = AsyncEngine(make_engine(absent_keycloak(silent_server_url)))

    async def scenario() -> tuple[int, Any]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        # Discovery comes before any look at the token, so its content does not matter.
        guard = await engine.protect(ToyRequest(headers={"Authorization": "Bearer a.b.c"}))
        done.set()
        await task
        return ticks, guard

    started = time.monotonic()
    ticks, guard = asyncio.run(scenario())
    elapsed = time.monotonic() - started
    assert guard.response.status == 503  # the silent server timed out (read_timeout 0.5 s)
    assert elapsed >= 0.4
    assert ticks >= 10, "the event loop stalled while Keycloak was slow"


# -- the core needs no web framework -----------------------------------------------------------

_FRAMEWORKLESS = r"""
import importlib.abc, sys

FRAMEWORKS = {"flask", "django", "starlette", "bottle", "fastapi", "falcon", "pyramid",
              "werkzeug", "quart", "aiohttp", "tornado"}

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FRAMEWORKS:
            raise ImportError(f"{name} is hidden: the core must not need it")
        return None

sys.meta_path.insert(0, Hide())

import kc_core, kc_core.engine, kc_core.plugins, kc_core.hookspecs, kc_core.stores.cookie
from kc_core.engine import Engine
from kc_core.engine.context import mount_path
from kc_core.plugins import Plugins, hookimpl

class Request:
    path = "/private"

class Adapter:
    @hookimpl
    def kc_request_types(self): return (Request,)
    def kc_request_method(self, request): return "GET"
    def kc_request_url(self, request): return "http://app.test/private"
    def kc_request_path(self, request): return request.path
    def kc_request_query(self, request): return {}
    def kc_request_header(self, request, name):
        return "application/json" if name == "accept" else None
    def kc_request_cookies(self, request): return {}
    def kc_request_form(self, request): return {}
    def kc_session(self, request): return {}
    def kc_redirect(self, request, location, headers): return (302, location)
    def kc_response(self, request, status, body, content_type, headers):
        return (status, dict(headers))

plugins = Plugins(load_entry_points=False)
plugins.register(Adapter(), name="plain")
engine = Engine(kc_core.Config(server_url="http://127.0.0.1:9", realm="r", client_id="c"),
                plugins=plugins)
status, headers = engine.protect(Request()).response
assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="r"'), (status, headers)
loaded = sorted(n for n in sys.modules if n.split(".")[0] in FRAMEWORKS)
assert not loaded, loaded
print("ok")
"""


def test_the_core_imports_and_runs_without_any_web_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-c", _FRAMEWORKLESS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_role_and_bearer_requirements_say_what_the_decorators_mean() -> None:
    needs = Requirement.for_roles(["realm:admin", "kc-api:reader"], any_role=True, scopes={"email"})
    assert needs == Requirement(("realm:admin", "kc-api:reader"), True, ("email",))
    with pytest.raises(ValueError, match="at least one role"):
        Requirement.for_roles([])
    api = Requirement.for_bearer(("kc-api:reader",))
    assert api == Requirement(("kc-api:reader",), api=True, bearer_only=True)
    assert Requirement.for_bearer() == Requirement(api=True, bearer_only=True)


_VALUES_ALONE = """
import sys
import kc_core.engine.values
import kc_core.plugins
parts = [n for n in sys.modules if n.startswith("kc_core.engine.") and n != "kc_core.engine.values"]
print(sorted(parts))
"""


def test_the_value_types_load_without_the_engine_and_plugins_import_them() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-c", _VALUES_ALONE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['kc_core.engine.settings']"


def test_identity_has_role_reads_realm_client_and_own_roles() -> None:
    identity = Identity.from_claims(
        {
            "sub": "u1",
            "azp": "orders-web",
            "realm_access": {"roles": ["admin"]},
            "resource_access": {"orders-web": {"roles": ["clerk"]}, "api": {"roles": ["reader"]}},
        }
    )
    assert identity.has_role("realm:admin")
    assert identity.has_role("api:reader")
    assert identity.has_role("clerk")  # a bare role: of the client the token was issued to
    assert not identity.has_role("clerk", client_id="api")
    assert not identity.has_role("realm:clerk")


def test_request_headers_read_and_iterate_through_the_adapter(toy_plugins: Plugins) -> None:
    request = ToyRequest(headers={"X-Agent": "kc", "Accept": "text/html"})
    headers = RequestHeaders(toy_plugins.adapter_for(request), request)
    assert headers["x-agent"] == "kc"
    assert dict(headers.items()) == {"X-Agent": "kc", "Accept": "text/html"}
    assert len(headers) == 2
    assert "missing" not in headers


def test_both_session_backends_are_one_protocol(make_engine: Callable[..., Engine]) -> None:
    server: SessionBackend = make_engine().sessions
    cookies: SessionBackend = CookieSessions(CookieTokenStore("x" * 32))
    assert isinstance(server, ServerSessions)
    assert isinstance(cookies, CookieSessions)


# -- the token store named by a setting -----------------------------------------------------------


def test_token_store_setting_builds_a_redis_store_per_tenant(
    make_engine: Callable[..., Engine],
) -> None:
    from kc_core.stores.redis import RedisTokenStore

    engine = make_engine(token_store="redis://127.0.0.1:9/3")  # builds; connects on first use

    store = engine.store_for(object())
    assert isinstance(store, RedisTokenStore)
    assert store.prefix == "kc:shop:orders-web"


def test_token_store_setting_is_read_from_framework_settings() -> None:
    settings = EngineSettings.from_mapping({"KEYCLOAK_TOKEN_STORE": "redis://cache:6379/0"})

    assert settings.token_store == "redis://cache:6379/0"


def test_an_unknown_token_store_setting_is_a_config_error(
    make_engine: Callable[..., Engine],
) -> None:
    from kc_core import ConfigError

    with pytest.raises(ConfigError) as refused:
        make_engine(token_store="memcached://cache:11211")
    assert refused.value.key == "token_store"


def test_io_threads_setting_is_read_and_checked() -> None:
    from kc_core import ConfigError

    assert EngineSettings.from_mapping({"KEYCLOAK_IO_THREADS": "3"}).io_threads == 3
    with pytest.raises(ConfigError, match="io_threads"):
        EngineSettings(io_threads=0)


def test_bearer_tokens_with_the_same_tail_each_keep_their_own_token() -> None:
    from kc_core.engine.bearer import BearerTokens, JwtVerifier

    tokens = BearerTokens(JwtVerifier())
    tail = "x" * 40  # longer than the part of a value that keys the memo
    first, second = f"Bearer first.{tail}", f"Bearer second.{tail}"
    assert tokens.seen(first) is None
    assert tokens.token_of(first) == f"first.{tail}"
    # A new string with the same value, as a server gives each request: the same token object.
    again = first.encode().decode()
    assert again is not first
    assert tokens.seen(again) is tokens.token_of(first)
    # Another value ending alike is never answered with the first one's token.
    assert tokens.seen(second) is None
    assert tokens.token_of(second) == f"second.{tail}"
    assert tokens.token_of(first) == f"first.{tail}"
    assert tokens.token_of(f"Basic {tail}") is None
    assert tokens.seen(f"Basic {tail}") is None


def test_identity_from_claims_is_the_frozen_value_its_fields_make() -> None:
    import dataclasses

    from kc_core.identity import Identity

    claims = {"sub": "f:1", "preferred_username": "alice", "email": "a@x.test", "name": "Al"}
    built = Identity.from_claims(claims)
    assert built == Identity(
        sub="f:1", username="alice", email="a@x.test", name="Al", claims=claims
    )
    assert built.claims is claims
    assert Identity.from_claims({}) == Identity(
        sub="", username=None, email=None, name=None, claims={}
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.sub = "other"  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True, slots=True)
    class Member(Identity):
        team: str = "none"

    member = Member.from_claims(claims)
    assert type(member) is Member
    assert (member.sub, member.team) == ("f:1", "none")
