"""What the benchmark scripts share: Keycloak-shaped tokens, a stand-in for Keycloak, the timing
harness, the targets and the result table.

The scripts import this file as a sibling module: ``python benchmarks/bench_X.py`` puts the
script's folder, ``benchmarks/``, first on ``sys.path``. Nothing here uses kc, so the same
tokens and clock serve every adapter and the baselines and peers they are compared with.

Timing: the request benchmarks (the adapters, the peers) and ``bench_tokens.py`` take their
samples in interleaved rounds (:func:`interleaved`: one sample of every row per round) and
report the median of each row's faster half of samples. Targets are ratios of rows of the
same run (:class:`Target`), never absolute microseconds, so a run on any machine says
honestly whether they are met.
``bench_enforcer.py`` reports ``per_call``: the median of the faster half of its samples.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from kc_core import TokenValidator

REALM = "bench"
#: The request loops' clock: CPU time of this process (all its threads), so other work on a
#: shared machine does not count while this process waits for a core.
clock = time.process_time
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
    """Serve discovery, the JWKS of ``key`` and userinfo on a free local port; yield its URL.

    Discovery and the JWKS are enough for a client's ``warm_up()``, which the scripts call
    before timing, so no timed request of kc reaches the server. The userinfo endpoint is
    for peers that ask Keycloak on every request: it answers the claims of a bearer token
    signed by ``key`` (signature checked here) and a 401 for any other. A POST to the
    introspection endpoint answers ``active: true`` and is counted in ``INTROSPECTIONS``
    (``bench_online.py`` checks that none happens while timing). Anything else is a 404.
    """
    issuer_path = f"/realms/{REALM}"
    documents: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == userinfo_path:
                claims = _userinfo(key, self.headers.get("Authorization", ""))
                body = json.dumps(claims or {"error": "invalid_token"}).encode()
                self.send_response(200 if claims else 401)
                if not claims:  # as Keycloak answers a refused token
                    self.send_header("WWW-Authenticate", _USERINFO_REFUSAL)
            else:
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
    userinfo_path = f"{issuer_path}/protocol/openid-connect/userinfo"
    documents[f"{issuer_path}/.well-known/openid-configuration"] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
        "token_endpoint": f"{issuer}/protocol/openid-connect/token",
        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
        "userinfo_endpoint": f"{base}{userinfo_path}",
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


_USERINFO_REFUSAL = (
    'Bearer realm="bench", error="invalid_token", error_description="Token verification failed"'
)


def _userinfo(key: rsa.RSAPrivateKey, authorization: str) -> dict[str, Any] | None:
    """The userinfo claims of a bearer token ``key`` signed, else ``None``."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return None
    signing_input, _, signature = token.rpartition(".")
    try:
        key.public_key().verify(
            base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
            signing_input.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        payload = signing_input.partition(".")[2]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, InvalidSignature):
        return None
    names = ("sub", "preferred_username", "email", "name")
    return {name: claims[name] for name in names if name in claims}


# -- WSGI requests --------------------------------------------------------------------------------


def received_environ(environ: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``environ`` whose ``HTTP_*`` values are new strings, as a server builds them
    for each request: a string's hash is computed once and kept on it, so a loop handing the
    same header string to every call would hide the cost of hashing a 2 KB token."""
    return {
        name: value.encode("latin-1").decode("latin-1") if name.startswith("HTTP_") else value
        for name, value in environ.items()
    }


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
    expect: str = "200",
) -> Callable[[], float]:
    """A timed loop of ``number`` full WSGI calls; returns seconds per call when run.

    ``environ`` is the environ of every call, or a function giving call ``i`` (counted over
    all runs of the loop) its own, such as ``fresh_environs.__getitem__``: looked up before
    the clock starts. Each call gets a fresh copy whose header values are new strings, as a
    server decodes each request (see :func:`received_environ`); the body is read and closed,
    as a server would. A run fails if any call answers anything but ``expect``.
    """
    environ_of = environ if callable(environ) else lambda i: environ
    statuses: list[str] = []
    calls_made = 0

    def start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
        statuses.append(status)

    def run() -> float:
        nonlocal calls_made
        environs = [received_environ(environ_of(calls_made + i)) for i in range(number)]
        statuses.clear()
        started = clock()
        for each in environs:
            body = app(each, start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        elapsed = clock() - started
        calls_made += number
        if len(statuses) != number or any(not s.startswith(expect) for s in statuses):
            raise SystemExit(f"unexpected answers while timing (not {expect}): {set(statuses)}")
        return elapsed / number

    return run


# -- ASGI requests --------------------------------------------------------------------------------

Message = dict[str, Any]


def asgi_scope(path: str, token: str | None) -> dict[str, Any]:
    """An HTTP GET scope for ``path`` as a server builds it, with ``Authorization: Bearer``
    when a token is given."""
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


def received_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``scope`` with new header bytes, as a server parses them for each request
    (see :func:`received_environ`)."""
    copy = dict(scope)
    copy["headers"] = [(name, bytes(bytearray(value))) for name, value in scope["headers"]]
    return copy


def asgi_request_loop(
    app: Any,
    scope: Mapping[str, Any] | Callable[[int], Mapping[str, Any]],
    number: int,
    expect: int = 200,
) -> Callable[[], float]:
    """A timed loop of ``number`` full ASGI calls; returns seconds per call when run.

    ``scope`` as ``environ`` of :func:`wsgi_request_loop`; each call gets a fresh copy with
    new header bytes (:func:`received_scope`), a no-op ``receive`` and a ``send`` that
    records the status; all calls of a run are awaited in one ``asyncio.run``. A run fails
    if any call answers anything but ``expect``.
    """
    scope_of = scope if callable(scope) else lambda i: scope
    statuses: list[int] = []
    calls_made = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def calls(scopes: list[Mapping[str, Any]]) -> float:
        started = clock()
        for each in scopes:
            await app(each, receive, send)
        return clock() - started

    def run() -> float:
        nonlocal calls_made
        scopes = [received_scope(scope_of(calls_made + i)) for i in range(number)]  # untimed
        statuses.clear()
        elapsed = asyncio.run(calls(scopes))
        calls_made += number
        if len(statuses) != number or any(s != expect for s in statuses):
            raise SystemExit(f"unexpected answers while timing (not {expect}): {set(statuses)}")
        return elapsed / number

    return run


def call_loop(
    fn: Callable[[Any], object], arguments: Callable[[int], Any], number: int
) -> Callable[[], float]:
    """A timed loop of ``number`` calls ``fn(arguments(i))``; returns seconds per call when run.

    The arguments are looked up before the clock starts, counted over all runs of the loop
    (``tokens.__getitem__``: each call its own token).
    """
    calls_made = 0

    def run() -> float:
        nonlocal calls_made
        each = [arguments(calls_made + i) for i in range(number)]
        started = clock()
        for argument in each:
            fn(argument)
        elapsed = clock() - started
        calls_made += number
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


def interleaved(rows: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Microseconds per call of every row: the faster half's median of ``rounds`` samples,
    taken in rounds.

    Every row runs once to warm up (imports, caches, the adapter lookup by request class),
    then each round takes one sample of every row, in an order of its own (shuffled, the
    same for every run): a burst of load from other work on the machine falls on all rows
    alike, and no row always follows the same one. Each sample starts from a collected heap
    (``gc.collect()``, untimed), so it pays for the garbage collections its own allocations
    cause, not for a collection its predecessors brought near. Load only ever adds time,
    and on a shared machine it comes and goes for seconds: the faster half of each row's
    samples is the machine at rest, its median the row's time.
    """
    for loop in rows.values():
        loop()
    names = list(rows)
    order = random.Random(len(names))  # a fixed order per script, run after run
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            gc.collect()
            samples[name].append(rows[name]())
    return {name: faster_half_median(values) * 1e6 for name, values in samples.items()}


# -- targets: ratios measured in the same run -----------------------------------------------------


@dataclass(frozen=True)
class Target:
    """``row`` (less ``minus``, when given: the cost it adds) is at most ``limit`` x ``over``
    (less ``over_minus``, when given: what ``over`` adds to its own bare row)."""

    row: str
    limit: float
    over: str
    minus: str | None = None
    over_minus: str | None = None

    def ratio(self, results: Mapping[str, float]) -> float:
        value = results[self.row] - (results[self.minus] if self.minus else 0.0)
        over = results[self.over] - (results[self.over_minus] if self.over_minus else 0.0)
        return value / over

    def describe(self) -> str:
        added = f"{self.row} - {self.minus}" if self.minus else self.row
        over = f"({self.over} - {self.over_minus})" if self.over_minus else self.over
        return f"{added} ≤ {self.limit:g} x {over}"


def adapter_targets(form: str, bare: str, validating: str) -> list[Target]:
    """The targets of one protected form (rows ``{form}, token seen before`` ...) over ``bare``.

    A token seen before adds ≤ 0.3x the bare request; a first-seen token adds ≤ 1.5x what
    validating it adds to the same bare app (row ``validating``: the bare app with the
    token validated by hand in the request, see :func:`validating_wsgi`); a request
    without a token adds ≤ 0.2x the bare request.
    """
    return [
        Target(f"{form}, {CACHED}", 0.3, bare, minus=bare),
        Target(f"{form}, {FIRST_SEEN}", 1.5, validating, minus=bare, over_minus=bare),
        Target(f"{form}, {NO_TOKEN}", 0.2, bare, minus=bare),
    ]


def validating_row(bare: str) -> str:
    """The name of the row of ``bare`` with a first-seen token validated by hand."""
    return f"{bare} validating a first-seen token itself"


def validating_wsgi(app: WSGIApplication, validator: TokenValidator) -> WSGIApplication:
    """``app`` with the least a hand-written check does in each request: validate the
    bearer token (``validator`` must be of its own, so each token is new to it).

    What validating adds to a request, measured in the request: a validation in a tight
    loop runs with the CPU's caches warm, one in a web request after the framework's own
    work does not, and costs more (the ``TokenValidator.validate`` row shows the loop).
    """

    def validating(environ: dict[str, Any], start_response: Any) -> Any:
        validator.validate(environ["HTTP_AUTHORIZATION"].partition(" ")[2])
        return app(environ, start_response)

    return validating


def validating_asgi(app: Any, validator: TokenValidator) -> Any:
    """:func:`validating_wsgi` for an ASGI app: validated on the event loop, by hand."""

    async def validating(scope: Any, receive: Any, send: Any) -> None:
        authorization = dict(scope["headers"])[b"authorization"].decode("latin-1")
        validator.validate(authorization.partition(" ")[2])
        await app(scope, receive, send)

    return validating


CACHED = "token seen before"
FIRST_SEEN = "first-seen token"
NO_TOKEN = "no token (401)"
VALIDATE_ROW = "TokenValidator.validate, first-seen token"


def report(
    results: Mapping[str, float], targets: Iterable[Target], *, baselines: Mapping[str, str]
) -> bool:
    """Print every row (µs per call; for a row of ``baselines``, the µs it adds over its bare
    row and that as a ratio), then each target, met or MISSED; ``True`` when all are met.

    ``baselines`` maps a row to the bare row it is compared with.
    """
    width = max(len(name) for name in results) + 1
    print(f"{'row':{width}} {'µs/call':>9} {'added µs':>9} {'x bare':>7}")
    for name, value in results.items():
        bare = baselines.get(name)
        if bare is None:
            print(f"{name:{width}} {value:9.2f}")
            continue
        added = value - results[bare]
        print(f"{name:{width}} {value:9.2f} {added:9.2f} {added / results[bare]:7.2f}")
    print()
    return report_targets(results, targets)


def report_targets(results: Mapping[str, float], targets: Iterable[Target]) -> bool:
    """Print each target, met or MISSED, with its ratio; ``True`` when all are met."""
    all_met = True
    for target in targets:
        ratio = target.ratio(results)
        met = ratio <= target.limit
        all_met &= met
        verdict = "met   " if met else "MISSED"
        print(f"{verdict} {ratio:6.2f} (≤ {target.limit:g})  {target.describe()}")
    return all_met


def rounds_arguments(
    doc: str | None, argv: list[str] | None = None, *, number: int = 2000, rounds: int = 9
) -> argparse.Namespace:
    """Parse ``--number`` (calls per sample; a tenth for first-seen rows) and ``--rounds``
    from ``argv`` (default: the command line)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--number", type=int, default=number, help="calls per sample")
    parser.add_argument("--rounds", type=int, default=rounds, help="samples per row, interleaved")
    return parser.parse_args(argv)


def token_pool(key: rsa.RSAPrivateKey, issuer: str, count: int) -> list[str]:
    """``count`` distinct tokens (see :func:`mint_token`): one per first-seen call."""
    return [mint_token(key, issuer) for _ in range(count)]


def own_validator(server_url: str) -> TokenValidator:
    """A validator of the stand-in's realm with a cache of its own: every token new to it."""
    from kc_core import Client, Config

    client = Client(Config(server_url=server_url, realm=REALM, client_id=CLIENT_ID))
    client.warm_up()  # discovery and keys now, never while timing
    return client.validator
