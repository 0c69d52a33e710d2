"""What the fuzz tests share: a local realm (keys, signed tokens, a stand-in for discovery and
the JWKS), mutators of tokens and of whole requests, and the checks every answer must pass.

Nothing here talks to Keycloak: the fuzz tests need tokens Keycloak would never sign (hostile
JSON, unicode headers, type-confused claims), so they are signed here with locally generated
keys, with ``cryptography`` only. Counts come from the environment, so the same tests are a
bounded run in the default suite and a long run under ``./dev fuzz``:

``KC_FUZZ_TOKENS``    mutated tokens through ``TokenValidator.validate`` (default 20,000)
``KC_FUZZ_REQUESTS``  mutated requests per adapter (default 1,000)
``KC_FUZZ_EXAMPLES``  Hypothesis examples per property (default 200)
``KC_FUZZ_SEED``      the mutators' seed (default 20_241_010, so a failure reproduces)
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

REALM = "fuzz"
CLIENT_ID = "fuzz-web"
CLIENT_SECRET = "fuzz-web-secret"
RSA_KID = "fuzz-rsa"
ED_KID = "fuzz-ed"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def count_from_env(name: str, default: int) -> int:
    """A positive count from the environment variable ``name``, else ``default``."""
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


TOKENS = count_from_env("KC_FUZZ_TOKENS", 20_000)
REQUESTS = count_from_env("KC_FUZZ_REQUESTS", 1_000)
EXAMPLES = count_from_env("KC_FUZZ_EXAMPLES", 200)
SEED = count_from_env("KC_FUZZ_SEED", 20_241_010)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS compact serialization writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- the realm ------------------------------------------------------------------------------


@dataclass
class LocalRealm:
    """Signing keys and the tokens signed with them; ``signed`` holds every signing input.

    A token whose ``header.claims`` is not in ``signed`` was never signed here: if a
    validator accepts it, that is a forgery.
    """

    issuer: str = "http://127.0.0.1:9/realms/fuzz"
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ed_key: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)
    signed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS of the realm's two keys."""
        numbers = self.rsa_key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        raw = self.ed_key.public_key().public_bytes_raw()
        return {
            "keys": [
                {"kty": "RSA", "kid": RSA_KID, "use": "sig", "alg": "RS256",
                 "n": b64url(n), "e": b64url(e)},
                {"kty": "OKP", "kid": ED_KID, "use": "sig", "crv": "Ed25519", "x": b64url(raw)},
            ]
        }  # fmt: skip

    def sign_raw(self, header: bytes, claims: bytes, *, eddsa: bool = False) -> str:
        """A compact JWS over the exact ``header`` and ``claims`` bytes (any JSON, or none)."""
        signing_input = f"{b64url(header)}.{b64url(claims)}"
        if eddsa:
            signature = self.ed_key.sign(signing_input.encode())
        else:
            signature = self.rsa_key.sign(
                signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        with self._lock:
            self.signed.add(signing_input)
        return f"{signing_input}.{b64url(signature)}"

    def sign(
        self, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None, **kw: Any
    ) -> str:
        """A token of ``claims`` with Keycloak's header (alg, typ, kid) unless ``header``."""
        eddsa = bool(kw.get("eddsa"))
        head = header or {"alg": "EdDSA" if eddsa else "RS256", "typ": "JWT",
                          "kid": ED_KID if eddsa else RSA_KID}  # fmt: skip
        return self.sign_raw(json.dumps(head).encode(), json.dumps(claims).encode(), eddsa=eddsa)

    def claims(self, kind: str = "access", **extra: Any) -> dict[str, Any]:
        """Valid claims of a ``kind`` token for ``CLIENT_ID``, an hour long."""
        now = int(time.time())
        base: dict[str, Any] = {
            "exp": now + 3600, "iat": now, "jti": str(uuid.uuid4()), "iss": self.issuer,
            "aud": CLIENT_ID, "sub": str(uuid.uuid4()), "azp": CLIENT_ID,
            "sid": str(uuid.uuid4()), "preferred_username": "fuzz",
            "realm_access": {"roles": ["user"]}, "scope": "openid profile",
        }  # fmt: skip
        if kind == "access":
            base["typ"] = "Bearer"
        elif kind == "id":
            base |= {"typ": "ID", "nonce": "n-0", "auth_time": now}
        elif kind == "logout":
            del base["azp"]
            base |= {"typ": "Logout", "events": {LOGOUT_EVENT: {}}}
        return base | extra

    def is_forgery(self, token: str) -> bool:
        """Whether ``token``'s signed part was never signed by this realm."""
        return token.rpartition(".")[0] not in self.signed


@contextmanager
def stand_in_keycloak(realm: LocalRealm) -> Iterator[str]:
    """Serve ``realm``'s discovery document and JWKS on a free local port; yield its URL.

    Also sets ``realm.issuer`` to the served issuer. Every other path is a 404.
    """
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = documents.get(self.path, b"{}")
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    realm.issuer = issuer = f"{base}/realms/{REALM}"
    documents[f"/realms/{REALM}/.well-known/openid-configuration"] = json.dumps(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
            "token_endpoint": f"{issuer}/protocol/openid-connect/token",
            "end_session_endpoint": f"{issuer}/protocol/openid-connect/logout",
            "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
        }
    ).encode()
    documents[f"/realms/{REALM}/protocol/openid-connect/certs"] = json.dumps(realm.jwks()).encode()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


# -- hostile values -------------------------------------------------------------------------

#: Text that broke parsers or headers before: non-Latin-1, lone surrogates, controls, quotes.
NASTY_TEXT: tuple[str, ...] = (
    "日本", "\ud800", "\udfff", "a\x00b", "\r\nX-Injected: 1", '"', "\\", "\\\"", "é", "\x7f",
    "²", "٣", "\u2028", "\ufeff", "💥", "%00", "%ZZ", "%ED%A0%80", "%C3", "../../etc/passwd",
    "//evil.example", "/\\evil.example", "https://evil.example/", "\t/x", " ", "", "null",
    "9" * 5000, "x" * 70_000,
)  # fmt: skip


def nested_json(depth: int, rng: random.Random) -> str:
    """JSON arrays and objects nested ``depth`` deep."""
    opens, closes = [], []
    for _ in range(depth):
        if rng.random() < 0.5:
            opens.append("[")
            closes.append("]")
        else:
            opens.append('{"a":')
            closes.append("}")
    return "".join(opens) + "1" + "".join(reversed(closes))


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON-able value meant to confuse claim checks: wrong types, edge numbers, text."""
    choice = rng.randrange(12)
    if choice == 0:
        return rng.choice(NASTY_TEXT[:-2])
    if choice == 1:
        return rng.choice([0, -1, 2**63, -(2**63), 10**400, 1e308, -1e308, 0.5, True, False])
    if choice == 2:
        return None
    if choice == 3 and depth < 3:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 4 and depth < 3:
        return {rng.choice(NASTY_TEXT[:8]): hostile_value(rng, depth + 1)}
    if choice == 5:
        return int(time.time()) + rng.randrange(-10_000, 10_000)
    if choice == 6:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(1, 8)))
    return rng.choice(["Bearer", "ID", "Logout", "JWT", CLIENT_ID, "openid", "", "none"])


def hostile_json_text(rng: random.Random) -> str:
    """JSON text (or almost JSON) no honest issuer writes."""
    choice = rng.randrange(10)
    if choice == 0:
        return nested_json(rng.choice([33, 100, 1000, 5000]), rng)
    if choice == 1:
        return '{"alg":"RS256","kid":' + nested_json(rng.randrange(30, 40), rng) + "}"
    if choice == 2:
        return '{"a":1e999999,"b":-Infinity,"c":NaN,"d":' + "9" * 5000 + "}"
    if choice == 3:
        return '{"alg":"RS256","kid":"\\ud800","nonce":"\\udfff\\u0000"}'
    if choice == 4:
        return '{"a":1,"a":2,"alg":"RS256","alg":"none"}'
    if choice == 5:
        return rng.choice(['"x"', "[]", "1", "null", "{", '{"a":}', "{}" + " " * 3, "\ufeff{}"])
    if choice == 6:
        return json.dumps({"alg": hostile_value(rng), "kid": hostile_value(rng),
                           "typ": hostile_value(rng), "crit": hostile_value(rng)})  # fmt: skip
    if choice == 7:
        return json.dumps({"x": "[{" * rng.randrange(1, 3000)})  # brackets inside a string
    if choice == 8:
        return json.dumps({"alg": "RS256", "kid": rng.choice(NASTY_TEXT[:12])}, ensure_ascii=False)
    return json.dumps({rng.choice(NASTY_TEXT[:10]): hostile_value(rng) for _ in range(3)})


class TokenMutator:
    """Mutated tokens from a few genuine ones: each call to :meth:`next` gives one.

    Returns ``(token, kind, nonce, access_token)``: a kind to validate the token as, and the
    nonce and access token to check an ID token against (hostile too, now and then).
    """

    KINDS = ("access", "id", "logout", "userinfo")

    def __init__(self, realm: LocalRealm, rng: random.Random) -> None:
        self.realm = realm
        self.rng = rng
        self.genuine = [
            realm.sign(realm.claims("access")),
            realm.sign(realm.claims("id")),
            realm.sign(realm.claims("logout")),
            realm.sign(realm.claims("access"), eddsa=True),
        ]
        self._mutations: Sequence[Callable[[str], str]] = (
            self._flip, self._insert, self._truncate, self._hostile_part, self._resigned_claims,
            self._resigned_header, self._splice, self._garbage, self._signature_tricks,
            self._genuine, self._oversized,
        )  # fmt: skip

    def next(self) -> tuple[str, str, str | None, str | None]:
        rng = self.rng
        token = rng.choice(self._mutations)(rng.choice(self.genuine))
        nonce = rng.choice([None, "n-0", "n-0", "\ud800", "日本", ""])
        access_token = rng.choice([None, self.genuine[0], "\udfff", "x"])
        return token, rng.choice(self.KINDS), nonce, access_token

    # Each mutation takes a genuine token and returns a hostile one.

    def _flip(self, token: str) -> str:
        chars = list(token)
        for _ in range(self.rng.randrange(1, 6)):
            chars[self.rng.randrange(len(chars))] = self.rng.choice("AZaz09-_.=+/ \x00é日\ud800")
        return "".join(chars)

    def _insert(self, token: str) -> str:
        at = self.rng.randrange(len(token) + 1)
        return (
            token[:at]
            + self.rng.choice([".", "..", "=", "%", "\n", "日本", "A" * 100])
            + token[at:]
        )

    def _truncate(self, token: str) -> str:
        return token[: self.rng.randrange(len(token))]

    def _hostile_part(self, token: str) -> str:
        parts = token.split(".")
        parts[self.rng.randrange(2)] = b64url(
            hostile_json_text(self.rng).encode("utf-8", "surrogatepass")
        )
        return ".".join(parts)

    def _resigned_claims(self, token: str) -> str:
        rng = self.rng
        kind = rng.choice(self.KINDS[:3])
        claims: dict[str, Any] = self.realm.claims(kind)
        for _ in range(rng.randrange(1, 4)):
            name = rng.choice(["exp", "iat", "nbf", "iss", "aud", "azp", "typ", "nonce", "sub",
                               "sid", "jti", "events", "at_hash", "auth_time", "realm_access",
                               "resource_access", "scope", rng.choice(NASTY_TEXT[:6])])  # fmt: skip
            if rng.random() < 0.2:
                claims.pop(name, None)
            else:
                claims[name] = hostile_value(rng)
        if rng.random() < 0.1:
            raw = hostile_json_text(rng).encode("utf-8", "surrogatepass")
        else:
            raw = json.dumps(claims).encode()
        header = json.dumps({"alg": "RS256", "typ": "JWT", "kid": RSA_KID}).encode()
        return self.realm.sign_raw(header, raw)

    def _resigned_header(self, token: str) -> str:
        rng = self.rng
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT", "kid": RSA_KID}
        header[rng.choice(["alg", "kid", "typ", "crit", "jku", "x5u", "cty"])] = hostile_value(rng)
        raw = json.dumps(header).encode()
        if rng.random() < 0.2:
            raw = hostile_json_text(rng).encode("utf-8", "surrogatepass")
        claims = json.dumps(self.realm.claims(rng.choice(self.KINDS[:3]))).encode()
        return self.realm.sign_raw(raw, claims)

    def _splice(self, token: str) -> str:
        other = self.rng.choice(self.genuine).split(".")
        parts = token.split(".")
        parts[self.rng.randrange(3)] = other[self.rng.randrange(3)]
        return ".".join(parts)

    def _garbage(self, token: str) -> str:
        rng = self.rng
        return "".join(chr(rng.randrange(0x110000 if rng.random() < 0.3 else 128))
                       for _ in range(rng.randrange(0, 64)))  # fmt: skip

    def _signature_tricks(self, token: str) -> str:
        head, _, signature = token.rpartition(".")
        return head + "." + self.rng.choice(
            [signature + "==", signature.replace("-", "+").replace("_", "/"), "", "AA",
             signature[:-1], signature + "A", "." + signature]
        )  # fmt: skip

    def _genuine(self, token: str) -> str:
        return token

    def _oversized(self, token: str) -> str:
        # Rare: a megabyte is slow to build; the size bound must refuse it before parsing.
        if self.rng.random() < 0.05:
            claims = self.realm.claims("access", pad="x" * 1_000_000)
            return self.realm.sign(claims)
        return token + "A" * self.rng.choice([10, 70_000])


# -- hostile requests -------------------------------------------------------------------------


@dataclass
class HostileRequest:
    """A request as bytes on the wire would give it: header values are Latin-1 text."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str | None = None

    def describe(self) -> str:
        """A short, ASCII description for failure messages."""
        headers = {k: v[:80] for k, v in self.headers.items()}
        return ascii((self.method, self.path, self.query[:120], headers, self.body[:120]))


def latin1(text: str) -> str:
    """``text`` as a server hands a header over: its UTF-8 bytes, read as Latin-1."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


class RequestMutator:
    """Hostile requests to an app's pages and to the engine's endpoints under ``/kc``."""

    PAGES = ("/", "/private", "/api/data")

    def __init__(self, tokens: TokenMutator, rng: random.Random) -> None:
        self.tokens = tokens
        self.rng = rng

    def next(self) -> HostileRequest:
        rng = self.rng
        choice = rng.randrange(10)
        if choice <= 3:
            request = HostileRequest("GET", rng.choice(self.PAGES))
            request.headers["Authorization"] = self._authorization()
        elif choice == 4:
            request = HostileRequest("GET", "/kc/login", query=self._query(["next"]))
        elif choice == 5:
            names = ["state", "code", "iss", "error", "error_description", "session_state"]
            request = HostileRequest("GET", "/kc/callback", query=self._query(names))
        elif choice == 6:
            token, *_ = self.tokens.next()
            body = rng.choice([
                b"logout_token=" + _form_escape(token),
                b"logout_token=" + latin1(token).encode("latin-1"),
                b"logout_token=%ff%fe&logout_token=x", b"logout_token", b"", b"=&&=",
                b"logout_token=" + b"A" * 200_000,
            ])  # fmt: skip
            request = HostileRequest("POST", "/kc/backchannel-logout", body=body)
            request.content_type = rng.choice(
                ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain",
                 "application/x-www-form-urlencoded; charset=日本"]
            )  # fmt: skip
        elif choice == 7:
            request = HostileRequest(rng.choice(["POST", "GET"]), "/kc/logout")
            request.headers["Origin"] = latin1(rng.choice((*NASTY_TEXT[:-2], "null")))
        elif choice == 8:
            request = HostileRequest("GET", rng.choice(self.PAGES))
            request.headers["Cookie"] = self._cookie()
        else:
            request = HostileRequest("GET", rng.choice(self.PAGES), query=self._query(["next"]))
            request.headers["Accept"] = latin1(rng.choice((*NASTY_TEXT[:-2], "application/json")))
            request.headers["X-Requested-With"] = latin1(rng.choice(NASTY_TEXT[:6]))
        if rng.random() < 0.3:
            request.headers["Accept"] = "application/json"
        return request

    def _authorization(self) -> str:
        rng = self.rng
        token, *_ = self.tokens.next()
        scheme = rng.choice(["Bearer ", "Bearer ", "bearer  ", "Basic ", "Bearer\t", "", "Bearer"])
        return latin1(scheme + token)

    def _query(self, names: Sequence[str]) -> str:
        rng = self.rng
        pairs = []
        for name in rng.sample(list(names), rng.randrange(1, len(names) + 1)):
            value = rng.choice((*NASTY_TEXT[:-1], "abc", "/ok?x=1#y"))
            encoded = _percent(value) if rng.random() < 0.7 else latin1(value)
            pairs.append(f"{name}={encoded}")
        if rng.random() < 0.1:
            pairs.append(rng.choice(["&&", "=", "%", "x=%zz", "a" * 5000]))
        return "&".join(pairs)

    def _cookie(self) -> str:
        rng = self.rng
        value = rng.choice((*NASTY_TEXT[:-1], "².abc", "1." + "A" * 50, "8.x", "0.x", "1.%%%"))
        name = rng.choice(["kc_tokens", "kc_tokens.1", "session", "sessionid", "kc_session"])
        extra = rng.choice(["", "; kc_tokens.1=" + "B" * 30, '; session="\\"x"'])
        return latin1(f"{name}={value}{extra}")


def _percent(text: str) -> str:
    return "".join(
        c if c.isascii() and (c.isalnum() or c in "-._~/") else
        "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in text
    )  # fmt: skip


def _form_escape(token: str) -> bytes:
    return _percent(token).encode("ascii")


# -- what every answer must be ----------------------------------------------------------------

_PARAM = r'[A-Za-z_][A-Za-z0-9_-]*="(?:[^"\\]|\\.)*"'
_CHALLENGE = re.compile(rf"Bearer(?: {_PARAM}(?:, {_PARAM})*)?")


def challenge_problem(value: str | None) -> str | None:
    """Why a ``WWW-Authenticate`` value is not a printable-ASCII, parseable Bearer challenge."""
    if value is None:
        return "no WWW-Authenticate header"
    if not (value.isascii() and value.isprintable()):
        return f"not printable ASCII: {value!a}"
    if _CHALLENGE.fullmatch(value) is None:
        return f"not a parseable Bearer challenge: {value!a}"
    return None


@dataclass
class Tally:
    """What a fuzz run saw: answers by status class, and the first failures in full."""

    runs: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0

    def fail(self, what: str) -> None:
        self.failure_count += 1
        if len(self.failures) < 10:
            self.failures.append(what)

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return f"{self.runs} runs, {self.failure_count} failures; statuses {statuses}"


def check_answer(
    tally: Tally, request: HostileRequest, status: int, headers: Sequence[tuple[str, str]]
) -> None:
    """Count one answer; a 5xx, or a 401 without a valid challenge, is a failure."""
    tally.runs += 1
    tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if status >= 500:
        tally.fail(f"{status} for {request.describe()}")
    for name, value in headers:
        if not (value.isascii() and value.isprintable()):
            tally.fail(f"header {name} not printable ASCII: {value!a} for {request.describe()}")
    challenges = [v for k, v in headers if k.lower() == "www-authenticate"]
    if status == 401 or challenges:
        problem = challenge_problem(challenges[0] if challenges else None)
        if problem is not None:
            tally.fail(f"{status}: {problem} for {request.describe()}")
