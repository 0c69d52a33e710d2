"""What kc-starlette's cheap paths must keep: the engine's exact answers and the user.

A request without a token on a bearer-only route gets a copy of the engine's first 401
(no engine call), and the ``Authorization`` header is decoded once per distinct value.
These tests pin that the copy is byte for byte the engine's answer, a response of its own
each time, and given only where the engine would answer the same; and that a token seen
before is answered on the event loop with ``request.user`` and ``request.auth`` set.
Keycloak is :class:`~kc_core.testing.issuer.LocalIssuer`, in process (no socket).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from kc_starlette import KeycloakMiddleware, RefusedHTTPException, bearer_required, build_engine
from kc_starlette import plugin as hooks
from kc_starlette.authentication import KeycloakBackend
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message

from kc_core import Client, Config
from kc_core.engine import AsyncEngine, Engine, EngineSettings
from kc_core.plugins import Plugins, hookimpl
from kc_core.testing.issuer import LocalIssuer, LocalUser

CLIENT_ID = "kc-api"
READER = LocalUser("alice", roles=("kc-api:reader",))
NO_TOKEN_BODY = {"error": "unauthorized", "error_description": "authentication required"}


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(realm="shop", clients={CLIENT_ID: None}).intercept() as issuer:
        yield issuer


def config_of(issuer: LocalIssuer, realm: str | None = None) -> Config:
    return Config(server_url=issuer.server_url, realm=realm or issuer.realm, client_id=CLIENT_ID)


@bearer_required(roles=["reader"])
async def api(request: Request) -> PlainTextResponse:
    # Anonymous on an exempt path or a preflight, which pass.
    name = getattr(request.user, "username", "anonymous")
    return PlainTextResponse(f"{name} {getattr(request.auth, 'token', None) is not None}")


def app_of(engine: Engine, **starlette: Any) -> Starlette:
    return Starlette(
        routes=[Route("/api", api, methods=["GET", "OPTIONS"]), Route("/open", api)],
        middleware=[Middleware(KeycloakMiddleware, engine=engine)],
        **starlette,
    )


def call(
    app: Any, path: str = "/api", headers: Sequence[tuple[bytes, bytes]] = (), method: str = "GET"
) -> list[Message]:
    """The ASGI messages ``app`` sends for one request."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("10.0.0.1", 5000), "server": ("app.test", 80),
        "headers": [(b"host", b"app.test"), (b"accept", b"application/json"), *headers],
    }  # fmt: skip
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    return messages


def status_of(messages: list[Message]) -> int:
    status: int = messages[0]["status"]
    return status


def header(messages: list[Message], name: bytes) -> list[bytes]:
    return [value for key, value in messages[0]["headers"] if key == name]


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


class CountingProtect:
    """Counts the engine's ``protect`` calls (what the copy saves)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Engine.protect

        def protect(engine: Engine, request: Any, *args: Any) -> Any:
            self.calls += 1
            return original(engine, request, *args)

        monkeypatch.setattr(Engine, "protect", protect)


def test_the_no_token_401_is_the_engines_answer_byte_for_byte_asked_once(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingProtect(monkeypatch)
    app = app_of(build_engine(config=config_of(issuer)))
    first = call(app)  # the engine's own answer
    assert counting.calls == 1
    again = [call(app) for _ in range(3)]  # copies of it
    assert counting.calls == 1
    assert all(messages == first for messages in again)
    assert status_of(first) == 401
    assert header(first, b"www-authenticate") == [b'Bearer realm="shop"']
    assert header(first, b"cache-control") == [b"no-store"]
    assert header(first, b"content-type") == [b"application/json"]
    body = first[1]["body"]
    assert header(first, b"content-length") == [str(len(body)).encode()]
    assert json.loads(body) == NO_TOKEN_BODY


def test_each_copy_is_a_response_of_its_own(issuer: LocalIssuer) -> None:
    seen: list[Response] = []

    async def unauthorized(request: Request, exc: Exception) -> Response:
        # An app's handler may add to kc's response: that must not reach the next one.
        assert isinstance(exc, RefusedHTTPException)
        exc.response.headers.append("x-request", str(len(seen)))
        seen.append(exc.response)
        return exc.response

    app = app_of(build_engine(config=config_of(issuer)), exception_handlers={401: unauthorized})
    answers = [call(app) for _ in range(3)]
    assert [header(messages, b"x-request") for messages in answers] == [[b"0"], [b"1"], [b"2"]]
    assert len({id(response) for response in seen}) == 3
    assert all(header(m, b"www-authenticate") == [b'Bearer realm="shop"'] for m in answers)


def test_requests_the_engine_answers_otherwise_do_not_get_the_copy(issuer: LocalIssuer) -> None:
    settings = EngineSettings(exempt_paths=("/open",))
    app = app_of(build_engine(config=config_of(issuer), settings=settings))
    assert status_of(call(app)) == 401  # the copy is kept from here on
    basic = call(app, headers=[(b"authorization", b"Basic YWxpY2U6eA==")])
    assert status_of(basic) == 401
    assert b'error="invalid_token"' in header(basic, b"www-authenticate")[0]
    assert json.loads(basic[1]["body"])["error"] == "invalid_token"
    preflight = [(b"origin", b"http://web.test"), (b"access-control-request-method", b"GET")]
    assert status_of(call(app, headers=preflight, method="OPTIONS")) == 200  # passes
    assert status_of(call(app, "/open")) == 200  # an exempt path passes
    token = issuer.mint_access_token(READER, CLIENT_ID)
    allowed = call(app, headers=bearer(token))
    assert (status_of(allowed), allowed[1]["body"]) == (200, b"alice True")


def test_a_token_added_behind_the_middleware_is_judged_not_refused(issuer: LocalIssuer) -> None:
    # As the WebSocket check does with a token from the query: no guard on the scope yet,
    # a header the middleware never saw.
    token = issuer.mint_access_token(READER, CLIENT_ID)

    def with_token(app: Any) -> Any:
        async def add_header(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/api" and scope["method"] == "POST":
                scope = {**scope, "headers": [*scope["headers"], *bearer(token)]}
            await app(scope, receive, send)

        return add_header

    app = Starlette(
        routes=[Route("/api", api, methods=["GET", "POST"])],
        middleware=[
            Middleware(KeycloakMiddleware, engine=build_engine(config=config_of(issuer))),
            Middleware(with_token),
        ],
    )
    assert status_of(call(app)) == 401  # the copy is kept from here on
    added = call(app, method="POST")
    assert (status_of(added), added[1]["body"]) == (200, b"alice True")


class TenantByHeader:
    @hookimpl
    def kc_select_tenant(self, request: HTTPConnection) -> str:
        return request.headers.get("x-tenant", "shop")


def test_several_tenants_each_get_their_own_realm_in_the_401(issuer: LocalIssuer) -> None:
    plugins = Plugins()
    plugins.register(TenantByHeader())
    engine = build_engine(
        config={"shop": config_of(issuer), "books": config_of(issuer, "books")}, plugins=plugins
    )
    app = app_of(engine)
    for tenant in ("shop", "books", "shop", "books"):
        answer = call(app, headers=[(b"x-tenant", tenant.encode())])
        assert status_of(answer) == 401
        assert header(answer, b"www-authenticate") == [f'Bearer realm="{tenant}"'.encode()]


def test_a_token_seen_before_is_answered_on_the_loop_with_the_user_on_the_request(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build_engine(config=config_of(issuer))
    users: list[Any] = []

    async def me(request: Request) -> PlainTextResponse:
        users.append(request.user)
        scopes = " ".join(s for s in request.auth.scopes if s.startswith(CLIENT_ID))
        return PlainTextResponse(f"{request.user.username} {scopes} {request.auth.token[-8:]}")

    app = Starlette(
        routes=[Route("/me", bearer_required(roles=["reader"])(me))],
        middleware=[Middleware(KeycloakMiddleware, engine=engine)],
    )
    token = issuer.mint_access_token(READER, CLIENT_ID)
    first = call(app, "/me", bearer(token))  # first seen: discovery and keys in a thread
    assert status_of(first) == 200
    assert first[1]["body"] == f"alice kc-api:reader {token[-8:]}".encode()

    def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a token seen before went to a worker thread")

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", no_thread)
    for _ in range(2):
        # A new bytes value each time, as a server gives: the memo keys on content.
        again = call(app, "/me", [(b"authorization", f"Bearer {token}".encode())])
        assert again == first
    assert users[1] is users[0]
    assert users[2] is users[0]
    assert status_of(call(app, "/me", bearer(token + "x"))) == 401  # not the same token


def test_a_token_admitted_before_skips_the_engine_while_it_stays_valid(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    engine = build_engine(config=Client(config_of(issuer), clock=lambda: now[0]))
    app = app_of(engine)
    token = issuer.mint_access_token(READER, CLIENT_ID, lifetime=300)
    for _ in range(2):  # validated, then kept from its second request on
        assert call(app, "/api", bearer(token))[1]["body"] == b"alice True"
    asked: list[str] = []
    for name in ("_authenticate_locally", "protect", "authenticate"):
        original = getattr(Engine, name)

        def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            asked.append(_name)
            return _original(*args)

        monkeypatch.setattr(Engine, name, counted)
    assert call(app, "/api", bearer(token))[1]["body"] == b"alice True"
    assert asked == []  # the kept guard, its role verdict: no engine pass
    now[0] += 3600  # an hour later the token has expired: judged again, and refused
    expired = call(app, "/api", bearer(token))
    assert status_of(expired) == 401
    assert b"expired" in header(expired, b"www-authenticate")[0]
    assert asked


def test_the_authorization_header_is_decoded_once_per_distinct_value() -> None:
    offline = Config(server_url="http://127.0.0.1:9", realm="r", client_id="c")
    backend = KeycloakBackend(build_engine(config=offline))

    def scope_with(value: bytes) -> dict[str, Any]:
        return {"type": "http", "headers": [(b"host", b"a.test"), (b"authorization", value)]}

    tail = b"." + b"s" * 40  # the same last bytes (a signature), different tokens
    one, other = b"Bearer aaa" + tail, b"Bearer bbb" + tail
    first = scope_with(bytes(one))
    text = backend.authorization(first)
    assert text == one.decode()
    assert backend.authorization(scope_with(bytes(one))) is text  # the same str: hashed once
    assert backend.authorization(scope_with(other)) == other.decode()  # not the other's
    assert backend.authorization(scope_with(one)) == one.decode()
    assert backend.authorization({"type": "http", "headers": [(b"host", b"a.test")]}) is None
    # The header hook answers the same string for the rest of the request.
    assert hooks.kc_request_header(HTTPConnection(first), "authorization") is text


class CountingAuthorize:
    """Counts the engine's ``authorize`` calls (what a kept verdict saves)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = Engine.authorize

        def authorize(engine: Engine, *args: Any) -> Any:
            self.calls += 1
            return original(engine, *args)

        monkeypatch.setattr(Engine, "authorize", authorize)


def test_a_route_check_a_kept_token_passed_is_not_asked_again(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    @bearer_required(roles=["writer"])
    async def write(request: Request) -> PlainTextResponse:
        return PlainTextResponse("written")

    engine = build_engine(config=config_of(issuer))
    app = Starlette(
        routes=[Route("/api", api), Route("/write", write)],
        middleware=[Middleware(KeycloakMiddleware, engine=engine)],
    )
    reader = issuer.mint_access_token(READER, CLIENT_ID)
    writer = issuer.mint_access_token(LocalUser("bob", roles=("kc-api:writer",)), CLIENT_ID)
    for _ in range(2):  # validated, then kept: the engine judges the route's roles
        assert call(app, "/api", bearer(reader))[1]["body"] == b"alice True"
    counted = CountingAuthorize(monkeypatch)
    for _ in range(3):
        assert call(app, "/api", bearer(reader))[1]["body"] == b"alice True"
    assert counted.calls == 0  # its verdict kept by the engine on its second request
    # Another route's requirement is its own verdict: the reader lacks "writer", every time.
    for _ in range(3):
        refused = call(app, "/write", bearer(reader))
        assert status_of(refused) == 403
    assert counted.calls == 3
    # Another token's verdicts are its own too: the writer is refused the reader's route.
    for _ in range(3):
        assert status_of(call(app, "/api", bearer(writer))) == 403
        assert call(app, "/write", bearer(writer))[1]["body"] == b"written"


def test_with_a_policy_enforcer_every_request_is_judged(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = build_engine(config=config_of(issuer))
    # An enforcer's decision may depend on the request (its path, its method): never kept.
    monkeypatch.setattr(engine.authorizer, "enforcer", object())
    judged: list[str] = []

    async def authorize(self: AsyncEngine, request: Any, guard: Any, requirement: Any) -> Any:
        judged.append(request.url.path)
        return guard

    monkeypatch.setattr(AsyncEngine, "authorize", authorize)
    app = app_of(engine)
    reader = issuer.mint_access_token(READER, CLIENT_ID)
    for _ in range(4):
        assert call(app, "/api", bearer(reader))[1]["body"] == b"alice True"
    assert judged == ["/api"] * 4
