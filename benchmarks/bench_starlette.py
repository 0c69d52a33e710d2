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

import argparse
import asyncio
import base64
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from kc_starlette import KeycloakMiddleware, bearer_required, build_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kc_core import Config

REALM = "bench"
CLIENT_ID = "kc-api"
KID = "bench-key"
TARGET_CACHED_US = 5.0

Message = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def mint_token(key: rsa.RSAPrivateKey, issuer: str) -> str:
    """An RS256 access token of the size and shape Keycloak issues (about 1.5 KB)."""
    now = int(time.time())
    claims = {
        "exp": now + 3600, "iat": now, "jti": str(uuid.uuid4()), "iss": issuer,
        "aud": [CLIENT_ID, "account"], "sub": str(uuid.uuid4()), "typ": "Bearer",
        "azp": "kc-web", "sid": str(uuid.uuid4()), "scope": "openid profile email",
        "realm_access": {"roles": ["offline_access", "uma_authorization", "user"]},
        "resource_access": {"kc-api": {"roles": ["reader", "writer"]}},
        "preferred_username": "alice", "name": "Alice Liddell", "email": "alice@example.com",
        "groups": [f"/org/department-{i}" for i in range(8)],
    }  # fmt: skip
    header = {"alg": "RS256", "typ": "JWT", "kid": KID}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


@contextmanager
def stand_in_keycloak(key: rsa.RSAPrivateKey) -> Iterator[str]:
    """Serve discovery and the JWKS of ``key`` on a free local port; yield the server URL."""
    numbers = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
                      "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}]}  # fmt: skip
    documents: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    issuer = f"{base}/realms/{REALM}"
    documents[f"/realms/{REALM}/.well-known/openid-configuration"] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
        "token_endpoint": f"{issuer}/protocol/openid-connect/token",
        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
    }
    documents[f"/realms/{REALM}/protocol/openid-connect/certs"] = jwks
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


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


def measure(loop: Callable[[], float], repeat: int) -> float:
    """Median of the faster half of ``repeat`` samples, in microseconds."""
    samples = sorted(loop() for _ in range(repeat))
    return statistics.median(samples[: max(1, (len(samples) + 1) // 2)]) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--number", type=int, default=5000, help="requests per sample")
    parser.add_argument("--repeat", type=int, default=9, help="samples per row")
    args = parser.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with stand_in_keycloak(key) as server_url:
        bare = bare_app()
        protected = protected_app(server_url, cache_size=4096)
        first_seen = protected_app(server_url, cache_size=4096)
        issuer = f"{server_url}/realms/{REALM}"
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
        for loop in rows.values():
            loop()  # warm-up: imports, caches, the adapter lookup by request class
        results = {name: measure(loop, args.repeat) for name, loop in rows.items()}
    bare_us = results["bare Starlette app"]
    print(f"{'row':45} {'µs/request':>11} {'added µs':>9}")
    for name, value in results.items():
        added = "" if name.startswith("bare") else f"{value - bare_us:9.2f}"
        print(f"{name:45} {value:11.2f} {added:>9}")
    added_cached = results["@bearer_required, token seen before"] - bare_us
    verdict = "met" if added_cached <= TARGET_CACHED_US else "MISSED"
    print(f"target: ≤ {TARGET_CACHED_US:.0f} µs added with a cached token: {verdict}")


if __name__ == "__main__":
    main()
