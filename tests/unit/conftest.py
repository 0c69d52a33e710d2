"""Unit-test fixtures: locally generated signing keys, a token minter, a settable clock and a
tiny local HTTP server that counts requests.

Nothing here talks to Keycloak. Tokens are signed with ``cryptography`` directly, so the code
under test is never used to produce its own inputs.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from kc_core import Config, TokenValidator

ISSUER = "https://sso.example.test/realms/shop"
API_AUDIENCE = "orders-api"
WEB_CLIENT = "orders-web"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
NOW = 1_700_000_000.0

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS compact serialization writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def _int_b64(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(size, "big"))


def sign(private: PrivateKey, alg: str, message: bytes) -> bytes:
    """A JWS signature over ``message``, made with ``cryptography`` only."""
    if alg == "EdDSA":
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        return private.sign(message)
    hash_algorithm = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        assert isinstance(private, rsa.RSAPrivateKey)
        return private.sign(message, padding.PKCS1v15(), hash_algorithm)
    if alg.startswith("PS"):
        assert isinstance(private, rsa.RSAPrivateKey)
        pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
        return private.sign(message, pss, hash_algorithm)
    assert isinstance(private, ec.EllipticCurvePrivateKey), alg
    r, s = decode_dss_signature(private.sign(message, ec.ECDSA(hash_algorithm)))
    size = (private.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@dataclass(frozen=True)
class SigningKey:
    """A private key with the kid (and optional alg restriction) its public JWK announces."""

    kid: str
    private: PrivateKey
    alg: str | None = None

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = {"kid": self.kid, "use": "sig"}
        if self.alg is not None:
            jwk["alg"] = self.alg
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            jwk |= {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        elif isinstance(public, ec.EllipticCurvePublicKey):
            point = public.public_numbers()
            size = (public.curve.key_size + 7) // 8
            jwk |= {
                "kty": "EC",
                "crv": _CURVE_NAMES[public.curve.name],
                "x": _int_b64(point.x, size),
                "y": _int_b64(point.y, size),
            }
        else:
            raw = public.public_bytes_raw()
            jwk |= {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        return jwk


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, SigningKey]:
    """Keys of the test realm, by kid, plus ``stranger`` (a key the realm does not publish)."""
    return {
        "rsa": SigningKey("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "rsa-rs256": SigningKey(
            "rsa-rs256", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
        ),
        "p256": SigningKey("p256", ec.generate_private_key(ec.SECP256R1()), "ES256"),
        "p384": SigningKey("p384", ec.generate_private_key(ec.SECP384R1()), "ES384"),
        "p521": SigningKey("p521", ec.generate_private_key(ec.SECP521R1()), "ES512"),
        "ed25519": SigningKey("ed25519", ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        "stranger": SigningKey(
            "stranger", rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
    }


@pytest.fixture(scope="session")
def realm_jwks(signing_keys: dict[str, SigningKey]) -> dict[str, Any]:
    """The JWKS the test realm publishes (every key but ``stranger``)."""
    return {"keys": [key.public_jwk() for kid, key in signing_keys.items() if kid != "stranger"]}


_DEFAULT_ALGS = {"rsa": "RS256", "rsa-rs256": "RS256", "stranger": "RS256"}


@dataclass
class TokenMinter:
    """Builds compact JWS tokens for the test realm.

    ``access_claims`` / ``id_claims`` / ``logout_claims`` give valid claims at :data:`NOW`;
    ``mint`` signs any claims with any header; ``compact`` assembles raw parts unchanged.
    """

    keys: Mapping[str, SigningKey]
    now: float = NOW

    def access_claims(self, *, without: Sequence[str] = (), **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": [API_AUDIENCE, "account"],
            "azp": WEB_CLIENT,
            "typ": "Bearer",
            "exp": int(self.now) + 300,
            "iat": int(self.now),
            "jti": "jti-access",
            "scope": "openid profile",
        }
        return _changed(claims, without, changes)

    def id_claims(self, *, without: Sequence[str] = (), **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": WEB_CLIENT,
            "azp": WEB_CLIENT,
            "typ": "ID",
            "exp": int(self.now) + 300,
            "iat": int(self.now),
            "auth_time": int(self.now) - 60,
            "nonce": "nonce-1",
            "sid": "session-1",
        }
        return _changed(claims, without, changes)

    def logout_claims(self, *, without: Sequence[str] = (), **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": WEB_CLIENT,
            "typ": "Logout",
            "exp": int(self.now) + 300,
            "iat": int(self.now),
            "jti": "jti-logout",
            "sid": "session-1",
            "events": {LOGOUT_EVENT: {}},
        }
        return _changed(claims, without, changes)

    def header(
        self, key: str = "rsa", *, without: Sequence[str] = (), **changes: Any
    ) -> dict[str, Any]:
        alg = self.keys[key].alg or _DEFAULT_ALGS[key]
        return _changed({"alg": alg, "typ": "JWT", "kid": key}, without, changes)

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        key: str = "rsa",
        header: Mapping[str, Any] | None = None,
        alg: str | None = None,
    ) -> str:
        """Sign ``claims`` (default: valid access claims) with ``key``.

        ``alg`` is the algorithm actually used to sign; it defaults to the header's ``alg``.
        """
        full_header = dict(self.header(key) if header is None else header)
        payload = self.access_claims() if claims is None else claims
        signing_input = f"{b64url_json(full_header)}.{b64url_json(payload)}"
        signature = sign(self.keys[key].private, alg or full_header["alg"], signing_input.encode())
        return f"{signing_input}.{b64url(signature)}"

    @staticmethod
    def compact(header_part: str, claims_part: str, signature_part: str) -> str:
        """Join encoded parts as they are, signed or not."""
        return f"{header_part}.{claims_part}.{signature_part}"

    def sign_parts(self, header_part: str, claims_part: str, *, key: str = "rsa") -> str:
        """Sign raw (possibly broken) encoded parts with ``key`` using its default algorithm."""
        signing_input = f"{header_part}.{claims_part}"
        alg = self.keys[key].alg or _DEFAULT_ALGS[key]
        signature = sign(self.keys[key].private, alg, signing_input.encode())
        return f"{signing_input}.{b64url(signature)}"


def _changed(
    base: dict[str, Any], without: Sequence[str], changes: Mapping[str, Any]
) -> dict[str, Any]:
    merged = {**base, **changes}
    for name in without:
        merged.pop(name, None)
    return merged


@pytest.fixture
def minter(signing_keys: dict[str, SigningKey]) -> TokenMinter:
    return TokenMinter(signing_keys)


class Clock:
    """A clock tests move by hand; pass it wherever kc accepts ``clock=``."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_validator(realm_jwks: dict[str, Any], clock: Clock) -> Callable[..., TokenValidator]:
    """A factory of validators for the test realm; keywords override the defaults."""

    def make(**overrides: Any) -> TokenValidator:
        options: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": API_AUDIENCE,
            "client_id": WEB_CLIENT,
            "leeway": 10.0,
            "clock": clock,
        }
        options.update(overrides)
        jwks = options.pop("jwks", realm_jwks)
        return TokenValidator(jwks, **options)

    return make


@pytest.fixture
def validator(make_validator: Callable[..., TokenValidator]) -> TokenValidator:
    return make_validator()


# -- a local HTTP server ------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One canned answer: a JSON (or raw bytes) body, a status, headers, an optional delay."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 answering canned replies and recording requests.

    ``answer(path, *replies)`` queues replies for a path; the last one keeps being served.
    Paths without replies answer 404.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: dict[str, list[Reply]] = {}
        self.recorded: list[Recorded] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._handle(self)

            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[path] = list(replies)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.recorded if path is None or r.path == path)

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            queue = self._replies.get(path)
            if not queue:
                return Reply({"error": "not_found"}, status=404)
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.recorded.append(Recorded(handler.command, path, dict(handler.headers), body))
        reply = self._next_reply(path)
        if reply.delay:
            time.sleep(reply.delay)  # the deliberate slow answer some tests need
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_server_url() -> Iterator[str]:
    """A URL whose socket completes the TCP handshake but never answers a request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def unaccepting_server_url() -> Iterator[str]:
    """A URL whose listen queue is full, so new connections hang in the TCP handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        queued: list[socket.socket] = []
        try:
            # With a backlog of 0 the kernel queues one connection; later SYNs are dropped.
            for _ in range(2):
                filler = socket.socket()
                filler.settimeout(0.05)
                try:
                    filler.connect(address)
                except TimeoutError:
                    filler.close()
                    break
                queued.append(filler)
            yield f"http://127.0.0.1:{address[1]}"
        finally:
            for filler in queued:
                filler.close()


@pytest.fixture
def make_config() -> Callable[..., Config]:
    """Config for a client of realm ``shop``; fast failure settings unless overridden."""

    def make(server_url: str, **overrides: Any) -> Config:
        options: dict[str, Any] = {
            "realm": "shop",
            "client_id": WEB_CLIENT,
            "connect_timeout": 0.5,
            "read_timeout": 0.5,
            "retries": 0,
            "retry_backoff": 0.0,
        }
        options.update(overrides)
        return Config(server_url=server_url, **options)

    return make
