"""The engine driven in-process through a toy adapter, against the real Keycloak.

Covers protection (bearer and session), the endpoints' refusals, back-channel logout, the
single-flight silent refresh, Keycloak being unreachable, cookie mode and AsyncEngine.
Every token here comes from Keycloak: the password grant for bearer tokens, the real login
form for sessions, Keycloak's own back-channel calls for logout tokens. Refreshes are forced
with a ``refresh_margin`` longer than the realm's 300 s token lifetime.

Two things Keycloak cannot do on demand are stood in for, each on a real token: an expired
access token is seen through a validator whose clock runs an hour ahead, and an expired
session token with Keycloak down has its local expiry record moved into the past.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import pytest
import requests
from toy_adapter import ToyAdapter, ToyRequest, ToyResponse

from kc_core import Config
from kc_core.engine import AsyncEngine, Engine, EngineSettings, Identity, Requirement
from kc_core.oidc import Client, TokenSet
from kc_core.plugins import Plugins
from kc_core.stores import SessionRecord
from kc_core.stores.cookie import CookieTokenStore
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import login_with_form
from kc_core.testing.conformance import backchannel_logout_to, serve_wsgi, wait_for
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

SECRET = "a-test-secret-of-enough-length"
# The app's origin as the engine sees it: kc-web accepts any loopback port as a redirect URI,
# and nothing listens on the discard port (the browser stops before the callback).
APP = "http://127.0.0.1:9"
CALLBACK = f"{APP}/kc/callback"


# -- fixtures and helpers -------------------------------------------------------------------------


def realm_config(keycloak: KeycloakRealm, **overrides: Any) -> Config:
    options: dict[str, Any] = {
        "server_url": keycloak.base_url,
        "realm": keycloak.realm,
        "client_id": "kc-web",
        "client_secret": keycloak.client("kc-web").secret,
        "connect_timeout": 1.0,
        "retries": 0,
    }
    options.update(overrides)
    return Config(**options)


@pytest.fixture
def toy_plugins() -> Plugins:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    return plugins


@pytest.fixture
def make_engine(keycloak: KeycloakRealm, toy_plugins: Plugins) -> Callable[..., Engine]:
    def make(store: Any = None, config: Config | Client | None = None, **settings: Any) -> Engine:
        return Engine(
            config or realm_config(keycloak),
            plugins=toy_plugins,
            store=store,
            settings=EngineSettings(**settings),
        )

    return make


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="module")
def grants(keycloak: KeycloakRealm) -> Iterator[Client]:
    """A kc-web client of its own, for password grants (the engines' calls stay countable)."""
    with Client(realm_config(keycloak)) as client:
        yield client


@pytest.fixture
def tokens_of(keycloak: KeycloakRealm, grants: Client) -> Callable[[str], TokenSet]:
    """Fresh tokens (and a fresh Keycloak session) for a realm user, by password grant."""

    def tokens(username: str) -> TokenSet:
        return grants.password_grant(username, keycloak.user(username).password)

    return tokens


@dataclass
class TokenEndpointCalls:
    """The answers of every token-endpoint call one client made."""

    answers: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.answers)


def count_token_calls(
    client: Client, monkeypatch: pytest.MonkeyPatch, *, delay: float = 0.0
) -> TokenEndpointCalls:
    """Record the client's calls to Keycloak's token endpoint from now on.

    ``delay`` holds each answer back that long, so concurrent callers overlap for sure.
    """
    token_url = client.discovery.endpoint("token_endpoint")
    calls = TokenEndpointCalls()
    send = client.http.session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = send(method, url, *args, **kwargs)
        if url == token_url:
            calls.answers.append(response.json())
            time.sleep(delay)
        return response

    monkeypatch.setattr(client.http.session, "request", request)
    return calls


def route(engine: Engine, request: ToyRequest) -> ToyResponse:
    """The engine's answer at one of its endpoints (``None`` would mean not its path)."""
    answer = engine.route(request)
    assert isinstance(answer, ToyResponse), request.url
    return answer


def bearer(token: str, path: str = "/private", **headers: str) -> ToyRequest:
    return ToyRequest(url=f"{APP}{path}", headers={"Authorization": f"Bearer {token}", **headers})


def logged_in(engine: Engine, tokens: TokenSet, path: str = "/private") -> ToyRequest:
    """A request whose session points at ``tokens`` (of a real Keycloak session)."""
    store = engine.store_for(ToyRequest())
    store.set("key-1", session_record(tokens), None)
    return ToyRequest(url=f"{APP}{path}", session={"kc": {"key": "key-1"}})


def session_record(tokens: TokenSet) -> SessionRecord:
    claims = tokens.id_claims or {}
    return SessionRecord(tokens, sub=str(claims["sub"]), sid=str(claims["sid"]))


def log_in_through_the_form(engine: Engine, username: str, request: ToyRequest) -> ToyResponse:
    """Start a login at the engine, sign in on Keycloak's form, hand the answer to the engine."""
    start = engine.login(request)
    assert start.status == 302
    done = login_with_form(
        start.header("Location") or "", username, f"{username}-password", stop_at=CALLBACK
    )
    request.url = done.url
    answer: ToyResponse = engine.callback(request)
    return answer


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unchecked: only to tell which session a logout token names."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@dataclass
class LogoutDeliveries:
    """A WSGI app handing Keycloak's back-channel logout posts to the engine, and a record."""

    engine: Engine
    answers: list[tuple[str, ToyResponse]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = dict(parse_qsl(environ["wsgi.input"].read(size).decode()))
        request = ToyRequest(
            url=f"{APP}{environ['PATH_INFO']}", method=environ["REQUEST_METHOD"], form=form
        )
        answer = self.engine.route(request) or ToyResponse(404)
        self.answers.append((form.get("logout_token", ""), answer))
        status = HTTPStatus(answer.status)
        start_response(f"{status.value} {status.phrase}", list(answer.headers))
        return [answer.body]

    def for_session(self, sid: str) -> tuple[str, ToyResponse]:
        """The logout token naming ``sid`` and the engine's answer, once Keycloak sent it."""

        def find() -> tuple[str, ToyResponse] | None:
            return next(
                (d for d in list(self.answers) if unverified_claims(d[0]).get("sid") == sid), None
            )

        wait_for(lambda: find() is not None, what=f"Keycloak's logout token for session {sid}")
        found = find()
        assert found is not None
        return found


@contextlib.contextmanager
def keycloak_posts_logouts_to(
    engine: Engine, keycloak: KeycloakRealm, admin: KeycloakAdmin
) -> Iterator[LogoutDeliveries]:
    """Point kc-web's back-channel logout URL at ``engine`` for the duration."""
    deliveries = LogoutDeliveries(engine)
    with (
        serve_wsgi(deliveries) as url,
        backchannel_logout_to(admin, keycloak.realm, url + engine.settings.backchannel_logout_path),
    ):
        yield deliveries


# -- bearer tokens -------------------------------------------------------------------------------


def test_a_valid_bearer_token_passes_with_the_built_in_identity(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    guard = engine.protect(bearer(tokens_of("alice").access_token))
    assert guard.allowed
    assert isinstance(guard.identity, Identity)
    assert guard.identity.username == "alice"


def test_a_bad_bearer_token_gets_401_with_the_reason(
    engine: Engine, keycloak: KeycloakRealm
) -> None:
    response = engine.protect(bearer("not.a-token")).response
    assert isinstance(response, ToyResponse)
    assert response.status == 401
    challenge = response.header("WWW-Authenticate") or ""
    assert challenge.startswith(
        f'Bearer realm="{keycloak.realm}", error="invalid_token", error_description="'
    )
    assert json.loads(response.body)["error"] == "invalid_token"


def test_an_expired_bearer_token_gets_401(
    make_engine: Callable[..., Engine],
    keycloak: KeycloakRealm,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    token = tokens_of("alice").access_token
    assert make_engine().protect(bearer(token)).allowed  # valid now...
    later = make_engine(config=Client(realm_config(keycloak), clock=lambda: time.time() + 3600))
    response = later.protect(bearer(token)).response  # ...and expired an hour from now
    assert response.status == 401
    assert "expired" in (response.header("WWW-Authenticate") or "")


def test_a_token_without_the_role_gets_403_and_with_it_passes(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    needs_admin = Requirement(roles=("realm:admin",))
    plain = tokens_of("bob").access_token  # realm role user
    admin = tokens_of("alice").access_token  # realm roles user, admin
    denied = engine.protect(bearer(plain), needs_admin).response
    assert denied.status == 403
    assert 'error="insufficient_scope"' in (denied.header("WWW-Authenticate") or "")
    assert engine.protect(bearer(admin), needs_admin).allowed


def test_any_role_needs_one_of_the_roles(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    token = tokens_of("bob").access_token  # kc-api reader, not a realm admin
    one = Requirement(roles=("kc-api:reader", "realm:admin"), any_role=True)
    both = Requirement(roles=("kc-api:reader", "realm:admin"))
    assert engine.protect(bearer(token), one).allowed
    assert engine.protect(bearer(token), both).response.status == 403


def test_scopes_must_all_be_granted(engine: Engine, tokens_of: Callable[[str], TokenSet]) -> None:
    token = tokens_of("carol").access_token  # scope "openid profile email"
    assert engine.protect(bearer(token), Requirement(scopes=("profile", "email"))).allowed
    denied = engine.protect(bearer(token), Requirement(scopes=("phone",))).response
    assert denied.status == 403
    assert "scope" in json.loads(denied.body)["error_description"]


def test_bearer_only_refuses_a_session(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    request = logged_in(engine, tokens_of("alice"))
    assert engine.protect(request).allowed
    assert engine.protect(request, Requirement(bearer_only=True)).response.status == 401


def test_authorize_checks_a_route_against_the_authenticated_claims_without_revalidating(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    needs_admin = Requirement(roles=("realm:admin",))
    bob = engine.authenticate(bearer(tokens_of("bob").access_token))
    alice = engine.authenticate(bearer(tokens_of("alice").access_token))
    assert bob.bearer
    assert bob.claims is not None
    assert bob.claims["preferred_username"] == "bob"
    engine.client.validator._cache.clear()  # authorize must not need the token again

    denied = engine.authorize(bearer("not-even-a-token"), bob, needs_admin).response
    assert denied.status == 403
    assert 'error="insufficient_scope"' in (denied.header("WWW-Authenticate") or "")
    assert engine.authorize(bearer("not-even-a-token"), alice, needs_admin) is alice


def test_authorize_lets_an_exempt_path_pass_whatever_the_route_asks(
    make_engine: Callable[..., Engine], tokens_of: Callable[[str], TokenSet]
) -> None:
    engine = make_engine(exempt_paths=("/public",), exempt_routes=("GET /health",))
    bob = engine.authenticate(bearer(tokens_of("bob").access_token))
    needs_admin = Requirement(roles=("realm:admin",))
    for path in ("/public", "/health"):
        assert engine.authorize(bearer("t", path=path), bob, needs_admin) is bob
    session = logged_in(engine, tokens_of("carol"), path="/public")
    assert engine.authorize(session, engine.authenticate(session), Requirement.for_bearer()).allowed
    assert engine.authorize(bearer("t", path="/private"), bob, needs_admin).response.status == 403


def test_authorize_keeps_protect_semantics_for_visitors_and_sessions(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    visitor = ToyRequest(headers={"Accept": "application/json"})
    assert engine.authorize(visitor, engine.authenticate(visitor)).response.status == 401
    session = logged_in(engine, tokens_of("alice"))
    guard = engine.authenticate(session)
    assert not guard.bearer
    assert guard.claims is not None
    assert engine.authorize(session, guard).allowed
    assert engine.authorize(session, guard, Requirement(bearer_only=True)).response.status == 401


# -- sessions ------------------------------------------------------------------------------------


def test_a_session_passes_and_ends_when_its_record_is_gone(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    request = logged_in(engine, tokens_of("alice"))
    assert engine.protect(request).identity.username == "alice"
    engine.store_for(request).delete("key-1")
    assert engine.protect(request).response.status == 302
    assert "kc" not in request.session


def test_concurrent_requests_of_one_session_refresh_once(
    make_engine: Callable[..., Engine],
    tokens_of: Callable[[str], TokenSet],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tokens live 300 s: with a 600 s margin every session token needs a refresh.
    engine = make_engine(refresh_margin=600)
    tokens = tokens_of("alice")
    first = logged_in(engine, tokens)
    calls = count_token_calls(engine.client, monkeypatch, delay=0.2)
    requests_ = [ToyRequest(url=first.url, session=first.session) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        guards = list(pool.map(engine.protect, requests_))
    assert all(g.allowed for g in guards)
    assert len(calls) == 1
    record = engine.store_for(first).get("key-1")
    assert record is not None
    assert record.tokens.refresh_token == calls.answers[0]["refresh_token"]
    assert record.tokens.refresh_token != tokens.refresh_token


def test_a_dead_refresh_token_ends_the_session(
    make_engine: Callable[..., Engine],
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    tokens_of: Callable[[str], TokenSet],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = make_engine(refresh_margin=600)
    tokens = tokens_of("alice")
    request = logged_in(engine, tokens)
    keycloak_admin.delete_session(keycloak.realm, session_record(tokens).sid or "")
    calls = count_token_calls(engine.client, monkeypatch)
    assert engine.protect(request).response.status == 302
    assert [answer["error"] for answer in calls.answers] == ["invalid_grant"]
    assert engine.store_for(request).get("key-1") is None


def test_keycloak_unreachable_is_503_json_and_the_session_survives(
    keycloak: KeycloakRealm,
    toy_plugins: Plugins,
    closed_port_url: str,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    store = MemoryTokenStore()
    down = Engine(
        realm_config(keycloak, server_url=closed_port_url), plugins=toy_plugins, store=store
    )
    up = Engine(realm_config(keycloak), plugins=toy_plugins, store=store)
    request = logged_in(down, tokens_of("alice"))
    response = down.protect(request).response
    assert (response.status, response.content_type) == (503, "application/json")
    assert "unreachable" in json.loads(response.body)["error_description"]
    assert down.login(ToyRequest(url=f"{APP}/kc/login")).status == 503
    assert request.session["kc"] == {"key": "key-1"}
    assert up.protect(request).identity.username == "alice"


def test_an_expired_token_with_keycloak_down_is_503_not_a_logout(
    keycloak: KeycloakRealm,
    toy_plugins: Plugins,
    closed_port_url: str,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    down = Engine(
        realm_config(keycloak, server_url=closed_port_url),
        plugins=toy_plugins,
        settings=EngineSettings(refresh_margin=60),
    )
    # Keycloak's tokens, as the session holds them five minutes on: only the receipt-time
    # expiry the engine keeps is moved (Keycloak issues no already-expired tokens).
    expired = dataclasses.replace(tokens_of("alice"), expires_at=time.time() - 5)
    request = logged_in(down, expired)
    assert down.protect(request).response.status == 503
    assert down.store_for(request).get("key-1") is not None


# -- endpoints -----------------------------------------------------------------------------------


def test_login_redirects_to_keycloak_and_remembers_the_safe_next(
    engine: Engine, keycloak: KeycloakRealm
) -> None:
    request = ToyRequest(url=f"{APP}/kc/login?next=https://evil.example/")
    response = route(engine, request)
    assert response.status == 302
    location = urlsplit(response.header("Location") or "")
    assert f"{location.scheme}://{location.netloc}{location.path}" == keycloak.auth_url
    query = parse_qs(location.query)
    assert query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    (entry,) = request.session["kc.logins"].values()
    assert entry["next"] == "/"


def test_pending_logins_are_bounded(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(max_pending_logins=2)
    request = ToyRequest(url=f"{APP}/kc/login?next=/a")
    for _ in range(4):
        engine.login(request)
    assert len(request.session["kc.logins"]) == 2


@pytest.mark.parametrize("query", ["code=c", "code=c&state=forged", "state=&code=c", ""])
def test_callback_without_a_pending_state_is_400(engine: Engine, query: str) -> None:
    request = ToyRequest(url=f"{APP}/kc/login?next=/a")
    engine.login(request)
    request.url = f"{CALLBACK}?{query}"
    assert engine.callback(request).status == 400


def test_callback_state_is_single_use_even_when_the_exchange_fails(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = ToyRequest(url=f"{APP}/kc/login?next=/a")
    engine.login(request)
    (state,) = request.session["kc.logins"]
    calls = count_token_calls(engine.client, monkeypatch)
    # Keycloak's iss comes along (RFC 9207), so the code reaches the token endpoint.
    iss = quote(engine.client.discovery.issuer, safe="")
    request.url = f"{CALLBACK}?code=never-issued&state={state}&iss={iss}"
    assert engine.callback(request).status == 401
    assert [answer["error"] for answer in calls.answers] == ["invalid_grant"]
    assert engine.callback(request).status == 400
    assert len(calls) == 1


def test_callback_starts_a_session_with_a_new_key_and_rotates_the_framework_session(
    engine: Engine,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    request = ToyRequest(url=f"{APP}/kc/login?next=/orders", session={"kc": {"key": "old"}})
    engine.store_for(request).set("old", session_record(tokens_of("bob")), None)
    response = log_in_through_the_form(engine, "alice", request)
    assert (response.status, response.header("Location")) == (302, "/orders")
    assert request.rotations == 1
    key = request.session["kc"]["key"]
    assert key != "old"
    assert engine.store_for(request).get("old") is None
    record = engine.store_for(request).get(key)
    assert record is not None
    assert record.sid is not None
    live = {s["id"] for s in keycloak_admin.user_sessions(keycloak.realm, "alice")}
    assert record.sid in live  # Keycloak's own session id, from the ID token
    assert engine.protect(ToyRequest(session=request.session)).identity.username == "alice"
    assert engine.callback(request).status == 400  # the state was used


def test_local_logout_forgets_the_session(
    make_engine: Callable[..., Engine], tokens_of: Callable[[str], TokenSet]
) -> None:
    engine = make_engine(logout_mode="local")
    request = logged_in(engine, tokens_of("alice"))
    request.method = "POST"
    request.url = f"{APP}/kc/logout"
    assert route(engine, request).header("Location") == "/"
    assert engine.store_for(request).get("key-1") is None
    assert "kc" not in request.session


def test_backchannel_logout_ends_the_named_session_once(
    engine: Engine, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    request = ToyRequest(url=f"{APP}/kc/login?next=/private")
    assert log_in_through_the_form(engine, "alice", request).status == 302
    record = engine.store_for(request).get(request.session["kc"]["key"])
    assert record is not None
    assert record.sid is not None
    private = ToyRequest(session=request.session)
    assert engine.protect(private).allowed
    with keycloak_posts_logouts_to(engine, keycloak, keycloak_admin) as deliveries:
        keycloak_admin.delete_session(keycloak.realm, record.sid)
        logout_token, answer = deliveries.for_session(record.sid)
    assert (answer.status, answer.header("Cache-Control")) == (200, "no-store")
    assert engine.protect(private).response.status == 302
    replay = ToyRequest(
        url=f"{APP}/kc/backchannel-logout", method="POST", form={"logout_token": logout_token}
    )
    assert route(engine, replay).status == 400  # replayed


def test_backchannel_logout_refuses_a_token_keycloak_did_not_sign(engine: Engine) -> None:
    # A missing token is refused before Keycloak is needed: see the unit tests.
    form = {"logout_token": "e30.e30.e30"}
    post = ToyRequest(url=f"{APP}/kc/backchannel-logout", method="POST", form=form)
    answer = engine.backchannel_logout(post)
    assert answer.status == 400
    assert json.loads(answer.body)["error"] == "invalid_request"


# -- cookie mode ---------------------------------------------------------------------------------


def cookie_request(store: CookieTokenStore, tokens: TokenSet) -> ToyRequest:
    pairs = store.encode(session_record(tokens))
    return ToyRequest(cookies=dict(pairs))


def test_cookie_mode_reads_the_session_from_cookies(
    make_engine: Callable[..., Engine], tokens_of: Callable[[str], TokenSet]
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store)
    guard = engine.protect(cookie_request(store, tokens_of("alice")))
    assert guard.identity.username == "alice"
    assert guard.headers == ()


def test_cookie_mode_refresh_hands_new_cookies_to_the_adapter(
    make_engine: Callable[..., Engine],
    tokens_of: Callable[[str], TokenSet],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store, refresh_margin=600)
    tokens = tokens_of("alice")
    calls = count_token_calls(engine.client, monkeypatch)
    guard = engine.protect(cookie_request(store, tokens))
    assert guard.allowed
    assert len(calls) == 1
    cookies = dict(
        value.split(";", 1)[0].split("=", 1)
        for name, value in guard.headers
        if name == "Set-Cookie"
    )
    record = store.decode(cookies)
    assert record is not None
    assert record.tokens.refresh_token == calls.answers[0]["refresh_token"]
    assert record.tokens.refresh_token != tokens.refresh_token


def test_cookie_mode_tampered_cookies_mean_logged_out_and_are_cleared(
    make_engine: Callable[..., Engine], tokens_of: Callable[[str], TokenSet]
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store)
    request = cookie_request(store, tokens_of("alice"))
    assert engine.protect(request).allowed
    head = request.cookies["kc_tokens"]
    request.cookies["kc_tokens"] = head[:-4] + ("AAAA" if not head.endswith("AAAA") else "BBBB")
    guard = engine.protect(request)
    assert guard.response.status == 302
    assert any(v.startswith("kc_tokens=;") for n, v in guard.response.headers if n == "Set-Cookie")


def test_cookie_mode_backchannel_logout_refuses_the_cookies_after(
    make_engine: Callable[..., Engine],
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    store = CookieTokenStore(SECRET)
    engine = make_engine(store=store)
    tokens = tokens_of("carol")
    request = cookie_request(store, tokens)
    assert engine.protect(request).allowed
    sid = session_record(tokens).sid or ""
    with keycloak_posts_logouts_to(engine, keycloak, keycloak_admin) as deliveries:
        keycloak_admin.delete_session(keycloak.realm, sid)
        _, answer = deliveries.for_session(sid)
    assert answer.status == 200
    assert engine.protect(request).response.status == 302


# -- async ---------------------------------------------------------------------------------------


def test_async_engine_answers_a_known_token_on_the_loop(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    token = tokens_of("alice").access_token
    engine.protect(bearer(token))  # first sight: validated (in a worker, for async callers)
    assert engine._protect_locally(bearer(token), Requirement()) is not None
    guard = asyncio.run(AsyncEngine(engine).protect(bearer(token)))
    assert guard.identity.username == "alice"


def test_a_first_seen_token_is_validated_on_the_loop_once_its_key_is_loaded(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    async_engine = AsyncEngine(engine)
    engine.protect(bearer(tokens_of("alice").access_token))  # discovery and keys fetched
    first_seen = tokens_of("alice").access_token
    guard = asyncio.run(async_engine.protect(bearer(first_seen)))
    assert guard.identity.username == "alice"
    who = asyncio.run(async_engine.authenticate(bearer(tokens_of("bob").access_token)))
    assert who.identity.username == "bob"
    refused = asyncio.run(async_engine.protect(bearer(first_seen[:-4] + "AAAA")))
    assert refused.response.status == 401
    assert asyncio.run(async_engine.authenticate(bearer("not-a-jwt"))).identity is None
    assert async_engine.io_calls == 0  # all of it on the loop: no key was missing


def test_a_token_seen_once_leaves_no_identity_or_verdict_behind(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    # What the engine keeps per token pays off from a token's second request on; a token
    # used once (the usual first request, and every token of a flood) keeps nothing.
    requirement = Requirement(roles=("realm:offline_access",))
    token = tokens_of("alice").access_token
    first = engine.protect(bearer(token), requirement)
    assert first.allowed
    assert token not in engine.identities._memo
    assert token not in engine.authorizer._verdicts
    second = engine.protect(bearer(token), requirement)
    assert second.identity is not first.identity
    assert engine.protect(bearer(token), requirement).identity is second.identity
    assert token in engine.authorizer._verdicts


def test_a_token_seen_once_leaves_no_verdict_behind_through_authorize_either(
    engine: Engine, tokens_of: Callable[[str], TokenSet]
) -> None:
    # Middlewares authenticate, then the route authorizes against that answer.
    requirement = Requirement(roles=("realm:offline_access",))
    token = tokens_of("alice").access_token
    first = engine.authenticate(bearer(token))
    assert engine.authorize(bearer(token), first, requirement) is first
    assert token not in engine.authorizer._verdicts
    second = engine.authenticate(bearer(token))
    assert engine.authorize(bearer(token), second, requirement) is second
    assert token in engine.authorizer._verdicts


def test_a_bearer_only_client_answers_401_without_reading_any_session(
    make_engine: Callable[..., Engine],
    keycloak: KeycloakRealm,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    # Nobody can log in through a bearer-only client: a browser gets the 401 too, and the
    # session (which such an app may not even have) is never read or written.
    engine = make_engine(config=realm_config(keycloak, bearer_only=True))
    browser = ToyRequest(url=f"{APP}/private", headers={"Accept": "text/html"})
    browser.session["kc"] = {"key": "left-over"}
    for answer in (
        engine.protect(browser).response,
        asyncio.run(AsyncEngine(engine).protect(browser)).response,
    ):
        assert answer.status == 401
        assert answer.header("WWW-Authenticate").startswith("Bearer")
    assert engine.authenticate(browser).identity is None
    assert browser.session == {"kc": {"key": "left-over"}}
    token = tokens_of("alice").access_token
    assert engine.protect(bearer(token)).identity.username == "alice"


def test_admits_answers_a_kept_token_only_on_a_requirement_it_passed(
    make_engine: Callable[..., Engine],
    keycloak: KeycloakRealm,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    # What protect() would answer, or nothing (then the adapter asks protect()).
    engine = make_engine()
    token = tokens_of("alice").access_token
    header = f"Bearer {token}"
    held = Requirement.for_bearer(roles=["realm:user"])
    missing = Requirement.for_bearer(roles=["realm:no-such-role"])
    assert engine.admits(header, held) is None  # never seen
    first = engine.protect(bearer(token), held)
    assert first.allowed
    assert engine.admits(header, held) is None  # seen once: nothing kept
    kept = engine.protect(bearer(token), held)
    assert engine.admits(header, held) is kept
    assert engine.admits(header, Requirement.for_bearer()) is kept  # no roles to pass
    assert not engine.protect(bearer(token), missing).allowed
    assert engine.admits(header, missing) is None  # refused: protect answers the 403
    assert engine.admits(header, held) is kept  # each route's verdict kept, not the last only
    assert engine.admits(header, Requirement.for_bearer(roles=["realm:user"])) is None  # not judged


def test_remembered_answers_a_token_admitted_before_while_it_is_valid(
    make_engine: Callable[..., Engine],
    keycloak: KeycloakRealm,
    tokens_of: Callable[[str], TokenSet],
) -> None:
    # Adapters ask it first on every request with a bearer token: it must answer exactly
    # what authenticate() would, or nothing.
    now = [time.time()]
    engine = make_engine(config=Client(realm_config(keycloak), clock=lambda: now[0]))
    token = tokens_of("alice").access_token
    header = f"Bearer {token}"
    assert engine.remembered(header) is None  # never seen
    engine.authenticate(bearer(token))
    assert engine.remembered(header) is None  # seen once: nothing kept
    kept = engine.authenticate(bearer(token))
    assert kept.identity.username == "alice"
    assert engine.remembered(header) is kept
    assert engine.remembered(f"Basic {token}") is None
    assert engine.remembered(header[:-4] + "AAAA") is None
    now[0] += 3600  # expired an hour from now
    assert engine.remembered(header) is None
    assert engine.authenticate(bearer(token)).identity is None
