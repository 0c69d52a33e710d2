"""What the benchmark scripts share: Keycloak-shaped tokens, a stand-in for Keycloak, the timing
harness and the result table.

The scripts import this file as a sibling module: ``python benchmarks/bench_X.py`` puts the
script's folder, ``benchmarks/``, first on ``sys.path``. Nothing here uses kc, so the same
tokens and clock serve every adapter and the baselines they are compared with.

Two timing rules live here, each kept as the scripts have always measured:

- the request benchmarks (``bench_flask.py`` and the other adapters) report ``measure``: the
  median of the faster half of the samples, the middle sample included when their number is
  odd (5 of 9), in microseconds per request;
- ``bench_tokens.py`` and ``bench_enforcer.py`` report ``per_call``: the median of the faster
  half without the middle sample (3 of 7, 4 of 9), in seconds per call.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

REALM = "bench"
CLIENT_ID = "kc-api"
KID = "bench-key"
CACHED_ROW_SUFFIX = "token seen before"
#: Paths of the introspection calls the stand-in for Keycloak answered.
INTROSPECTIONS: list[str] = []

# -- keys and tokens ------------------------------------------------------------------------------


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA signing key, the size Keycloak's realm keys have by default."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE encodes every part of a token and every JWK number."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(key: rsa.RSAPublicKey, kid: str, **members: str) -> dict[str, str]:
    """The JWK of ``key``: kty, kid, then ``members`` (such as use, alg), n and e."""
    numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        **members,
        "n": _int_b64url(numbers.n),
        "e": _int_b64url(numbers.e),
    }


def sign_rs256(key: rsa.RSAPrivateKey, kid: str, claims: Mapping[str, Any]) -> str:
    """A compact RS256 JWT of ``claims``, with the header Keycloak writes (alg, typ, kid)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def mint_token(key: rsa.RSAPrivateKey, issuer: str) -> str:
    """A distinct RS256 access token of the size and shape Keycloak issues (about 1.5 KB).

    Audience ``CLIENT_ID``, the client role ``reader``, valid for an hour; every call gets
    its own ``jti``, ``sub`` and ``sid``, so no two tokens are equal.
    """
    now = int(time.time())
    claims = {
        "exp": now + 3600, "iat": now, "jti": str(uuid.uuid4()), "iss": issuer,
        "aud": [CLIENT_ID, "account"], "sub": str(uuid.uuid4()), "typ": "Bearer",
        "azp": "kc-web", "sid": str(uuid.uuid4()), "scope": "openid profile email",
        "realm_access": {"roles": ["offline_access", "uma_authorization", "user"]},
        "resource_access": {CLIENT_ID: {"roles": ["reader", "writer"]}},
        "preferred_username": "alice", "name": "Alice Liddell", "email": "alice@example.com",
        "groups": [f"/org/department-{i}" for i in range(8)],
    }  # fmt: skip
    return sign_rs256(key, KID, claims)


# -- a stand-in for Keycloak ----------------------------------------------------------------------


def issuer_of(server_url: str) -> str:
    """The issuer of realm ``REALM`` on the Keycloak at ``server_url``."""
    return f"{server_url}/realms/{REALM}"


@contextmanager
def stand_in_keycloak(key: rsa.RSAPrivateKey) -> Iterator[str]:
    """Serve discovery and the JWKS of ``key`` on a free local port; yield the server URL.

    Only these two documents exist (anything else is a 404): enough for a client's
    ``warm_up()``, which the scripts call before timing, so no timed request reaches it.
    A POST to the introspection endpoint answers ``active: true`` and is counted in
    ``INTROSPECTIONS`` (``bench_online.py`` checks that none happens while timing).
    """
    issuer_path = f"/realms/{REALM}"
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

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            found = self.path == f"{issuer_path}/protocol/openid-connect/token/introspect"
            if found:
                INTROSPECTIONS.append(self.path)
            body = json.dumps({"active": True} if found else {}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    issuer = issuer_of(base)
    documents[f"{issuer_path}/.well-known/openid-configuration"] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
        "token_endpoint": f"{issuer}/protocol/openid-connect/token",
        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
        "introspection_endpoint": f"{issuer}/protocol/openid-connect/token/introspect",
    }
    documents[f"{issuer_path}/protocol/openid-connect/certs"] = {
        "keys": [public_jwk(key.public_key(), KID, use="sig", alg="RS256")]
    }
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


# -- WSGI requests --------------------------------------------------------------------------------


def wsgi_environ(
    path: str, token: str | None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A GET environ for ``path``, with ``Authorization: Bearer token`` when a token is given.

    ``overrides`` replaces entries in place (the key order stays that of the base environ).
    """
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }  # fmt: skip
    if overrides:
        environ.update(overrides)
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return environ


def wsgi_request_loop(
    app: WSGIApplication,
    environ: Mapping[str, Any] | Callable[[int], Mapping[str, Any]],
    number: int,
) -> Callable[[], float]:
    """A timed loop of ``number`` full WSGI calls; returns seconds per call when run.

    ``environ`` is the environ of every call, or a function giving call ``i`` (counted over
    all runs of the loop) its own, such as ``fresh_environs.__getitem__``: looked up before
    the clock starts. Each call gets a fresh copy; the body is read and closed, as a server
    would. A run fails if any call answers anything but 200.
    """
    environ_of = environ if callable(environ) else lambda i: environ
    statuses: list[str] = []
    calls_made = 0

    def start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
        statuses.append(status)

    def run() -> float:
        nonlocal calls_made
        environs = [environ_of(calls_made + i) for i in range(number)]
        statuses.clear()
        started = time.perf_counter()
        for each in environs:
            body = app(dict(each), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        elapsed = time.perf_counter() - started
        calls_made += number
        if len(statuses) != number or any(not s.startswith("200") for s in statuses):
            raise SystemExit(f"unexpected answers while timing: {set(statuses)}")
        return elapsed / number

    return run


# -- timing ---------------------------------------------------------------------------------------


def faster_half_median(samples: Iterable[float], *, keep_middle: bool = True) -> float:
    """The median of the faster half of ``samples``.

    With an odd number of samples, ``keep_middle`` says whether the middle one belongs to the
    faster half (9 samples: 5 with it, 4 without).
    """
    ordered = sorted(samples)
    half = (len(ordered) + 1) // 2 if keep_middle else len(ordered) // 2
    return statistics.median(ordered[: max(1, half)])


def measure(loop: Callable[[], float], repeat: int) -> float:
    """Median of the faster half of ``repeat`` samples of ``loop``, in microseconds."""
    return faster_half_median(loop() for _ in range(repeat)) * 1e6


def per_call(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Seconds per call of ``fn``: ``repeat`` samples of ``number`` calls, the faster half's
    median (without the middle sample)."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return faster_half_median(samples, keep_middle=False)


def time_rows(rows: Mapping[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Run every row once to warm up, then ``measure`` each in order; microseconds per row."""
    for loop in rows.values():
        loop()  # warm-up: imports, caches, the adapter lookup by request class
    return {name: measure(loop, repeat) for name, loop in rows.items()}


# -- the request benchmarks' command line and table -----------------------------------------------


def request_arguments(doc: str | None) -> argparse.Namespace:
    """Parse ``--number`` and ``--repeat``; the description is the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--number", type=int, default=5000, help="requests per sample")
    parser.add_argument("--repeat", type=int, default=9, help="samples per row")
    return parser.parse_args()


def print_request_table(
    results: Mapping[str, float],
    *,
    baseline: str,
    target_us: float,
    width: int = 45,
    label: str = "target",
) -> None:
    """Print µs per request and µs added over ``baseline``, then whether the target is met.

    Rows named ``bare …`` are baselines and show nothing added. The target holds for the
    slowest row ending in ``token seen before`` (a cached token).
    """
    base = results[baseline]
    print(f"{'row':{width}} {'µs/request':>11} {'added µs':>9}")
    for name, value in results.items():
        added = "" if name.startswith("bare") else f"{value - base:9.2f}"
        print(f"{name:{width}} {value:11.2f} {added:>9}")
    cached = [value - base for name, value in results.items() if name.endswith(CACHED_ROW_SUFFIX)]
    verdict = "met" if max(cached) <= target_us else "MISSED"
    print(f"{label}: ≤ {target_us:.0f} µs added with a cached token: {verdict}")
