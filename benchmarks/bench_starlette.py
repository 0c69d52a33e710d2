"""What kc-starlette adds to a Starlette request: a protected endpoint against the bare app.

Run: ``python benchmarks/bench_starlette.py`` (kc-core and kc-starlette installed).

Two apps with the same route and the same endpoint body, called in-process through their
ASGI entry point with a prepared scope and no-op ``receive``/``send``, in the same run and
the same harness: the bare app, and the app with ``KeycloakMiddleware`` in front and the
endpoint under ``@bearer_required(roles=["reader"])``. Tokens are RS256 and shaped like
Keycloak's, signed here; a local stand-in for Keycloak serves discovery and the JWKS once,
before timing. Rows: the bare app; the protected app with a token seen before (the
validator's cache hit: the steady state of an API; the middleware's authentication and the
endpoint's check both answer on the event loop); and with a first-seen token (a distinct
token minted beforehand for every call, the cache on as in production: the middleware
validates it in a worker thread, then the endpoint's check finds it cached).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from _support import (
    CLIENT_ID,
    REALM,
    issuer_of,
    mint_token,
    new_rsa_key,
    print_request_table,
    request_arguments,
    stand_in_keycloak,
    time_rows,
)
from kc_starlette import KeycloakMiddleware, bearer_required, build_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kc_core import Config

TARGET_CACHED_US = 5.0

Message = dict[str, Any]


async def endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def bare_app() -> Starlette:
    """The app without kc: one route, the endpoint as is."""
    return Starlette(routes=[Route("/api", endpoint)])


def protected_app(server_url: str, *, cache_size: int) -> Starlette:
    """The same route behind ``KeycloakMiddleware`` and ``@bearer_required(roles=[...])``."""
    config = Config(
        server_url=server_url, realm=REALM, client_id=CLIENT_ID, token_cache_size=cache_size
    )
    engine = build_engine(config=config)
    engine.client.warm_up()  # discovery and keys now, never while timing
    return Starlette(
        routes=[Route("/api", bearer_required(roles=["reader"])(endpoint))],
        middleware=[Middleware(KeycloakMiddleware, engine=engine)],
    )


def scope_for(path: str, token: str | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"application/json"),
               (b"user-agent", b"bench"), (b"accept-encoding", b"gzip")]  # fmt: skip
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip


def request_loop(
    app: Starlette, scope_of: Callable[[int], dict[str, Any]], number: int
) -> Callable[[], float]:
    """A timed loop of ``number`` full ASGI calls; call ``i`` gets a copy of ``scope_of(i)``."""
    statuses: list[int] = []
    calls_made = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def calls(first: int) -> float:
        scopes = [scope_of(first + i) for i in range(number)]  # prepared before timing
        started = time.perf_counter()
        for scope in scopes:
            await app(dict(scope), receive, send)
        return time.perf_counter() - started

    def run() -> float:
        nonlocal calls_made
        statuses.clear()
        elapsed = asyncio.run(calls(calls_made))
        calls_made += number
        if len(statuses) != number or any(s != 200 for s in statuses):
            raise SystemExit(f"unexpected answers while timing: {set(statuses)}")
        return elapsed / number

    return run


def main() -> None:
    args = request_arguments(__doc__)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        bare = bare_app()
        protected = protected_app(server_url, cache_size=4096)
        first_seen = protected_app(server_url, cache_size=4096)
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        first_seen_number = max(1, args.number // 10)
        # One fresh token per call: the warm-up run and every timed sample.
        fresh = [
            scope_for("/api", mint_token(key, issuer))
            for _ in range(first_seen_number * (args.repeat + 1))
        ]
        cached_scope, bare_scope = scope_for("/api", token), scope_for("/api", None)
        rows: dict[str, Callable[[], float]] = {
            "bare Starlette app": request_loop(bare, lambda i: bare_scope, args.number),
            "@bearer_required, token seen before": request_loop(
                protected, lambda i: cached_scope, args.number
            ),
            "@bearer_required, first-seen token": request_loop(
                first_seen, fresh.__getitem__, first_seen_number
            ),
            "bare Starlette app (again, drift check)": request_loop(
                bare, lambda i: bare_scope, args.number
            ),
        }
        results = time_rows(rows, args.repeat)
    print_request_table(results, baseline="bare Starlette app", target_us=TARGET_CACHED_US)


if __name__ == "__main__":
    main()
