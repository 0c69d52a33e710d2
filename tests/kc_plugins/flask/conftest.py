"""Fixtures for kc-flask tests: a fake Keycloak for unit tests, and app servers on free ports.

:class:`FakeKeycloak` answers discovery, JWKS, the token endpoint (authorization code and
refresh grants) and end-session, signing tokens with a key generated here with
``cryptography``, so kc's own code never produces its inputs. Integration tests use the
real Keycloak from kc-core's pytest plugin instead.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, g
from kc_flask import (
    Keycloak,
    bearer_required,
    current_access_token,
    current_user,
    login_required,
    roles_required,
)
from werkzeug.serving import BaseWSGIServer, make_server

REALM = "shop"
CLIENT_ID = "web"
CLIENT_SECRET = "web-secret"
KID = "fake-rsa"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class FakeKeycloak:
    """A tiny OpenID provider on a free local port, just enough for kc's engine."""

    key: rsa.RSAPrivateKey
    port: int = 0
    #: authorization code -> (nonce, user claims) for the token endpoint to answer.
    codes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    access_lifetime: int = 300
    #: realm roles of each user the fake knows; others get none.
    user_roles: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"alice": ("user", "admin"), "bob": ("user",)}
    )

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.server_url}/realms/{REALM}"

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        jwk = {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
               "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}  # fmt: skip
        return {"keys": [jwk]}

    def sign(self, claims: Mapping[str, Any], typ: str = "JWT") -> str:
        header = {"alg": "RS256", "typ": typ, "kid": KID}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def access_token(
        self,
        username: str = "alice",
        *,
        realm_roles: tuple[str, ...] | None = None,
        client_roles: Mapping[str, tuple[str, ...]] | None = None,
        lifetime: float | None = None,
        **extra: Any,
    ) -> str:
        """A signed access token for ``username`` meant for the web client."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": [CLIENT_ID],
            "azp": CLIENT_ID,
            "sub": f"sub-{username}",
            "typ": "Bearer",
            "iat": now,
            "exp": now + int(self.access_lifetime if lifetime is None else lifetime),
            "jti": str(uuid.uuid4()),
            "sid": f"sid-{username}",
            "preferred_username": username,
            "name": username.title(),
            "email": f"{username}@example.test",
            "scope": "openid profile email",
            "realm_access": {
                "roles": list(
                    self.user_roles.get(username, ()) if realm_roles is None else realm_roles
                )
            },
            "resource_access": {k: {"roles": list(v)} for k, v in (client_roles or {}).items()},
        }
        claims.update(extra)
        return self.sign(claims)

    def logout_token(self, username: str = "alice", **extra: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 60,
            "jti": str(uuid.uuid4()), "sub": f"sub-{username}", "sid": f"sid-{username}",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            "typ": "Logout",
        }  # fmt: skip
        claims.update(extra)
        return self.sign(claims, typ="logout+jwt")

    def issue_code(self, authorization_url: str, username: str = "alice") -> tuple[str, str]:
        """Act as the login page: a code for the login at ``authorization_url``, and its state."""
        params = dict(parse_qsl(urlsplit(authorization_url).query))
        code = secrets.token_urlsafe(16)
        self.codes[code] = (params["nonce"], {"username": username})
        return code, params["state"]

    def token_answer(self, nonce: str | None, username: str) -> dict[str, Any]:
        now = int(time.time())
        access = self.access_token(username)
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = {"username": username, "nonce": nonce}
        id_claims = {
            "iss": self.issuer, "aud": CLIENT_ID, "azp": CLIENT_ID, "sub": f"sub-{username}",
            "typ": "ID", "iat": now, "exp": now + 300, "sid": f"sid-{username}",
            "preferred_username": username, "name": username.title(),
            "email": f"{username}@example.test",
        }  # fmt: skip
        if nonce is not None:
            id_claims["nonce"] = nonce
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "refresh_token": refresh,
            "refresh_expires_in": 1800,
            "id_token": self.sign(id_claims),
            "scope": "openid profile email",
        }

    def metadata(self) -> dict[str, Any]:
        base = f"{self.issuer}/protocol/openid-connect"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/certs",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "introspection_endpoint": f"{base}/token/introspect",
            "revocation_endpoint": f"{base}/revoke",
            "id_token_signing_alg_values_supported": ["RS256"],
        }


def _handler(fake: FakeKeycloak) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            fake.requests.append(("GET", path, {}))
            if path.endswith("/.well-known/openid-configuration"):
                self._json(200, fake.metadata())
            elif path.endswith("/certs"):
                self._json(200, fake.jwks())
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            fake.requests.append(("POST", path, form))
            if path.endswith("/token"):
                grant = form.get("grant_type")
                if grant == "authorization_code" and form.get("code") in fake.codes:
                    nonce, user = fake.codes.pop(form["code"])
                    self._json(200, fake.token_answer(nonce, user["username"]))
                elif grant == "refresh_token" and form.get("refresh_token") in fake.refresh_tokens:
                    entry = fake.refresh_tokens.pop(form["refresh_token"])
                    self._json(200, fake.token_answer(None, entry["username"]))
                else:
                    self._json(400, {"error": "invalid_grant", "error_description": "bad code"})
            elif path.endswith("/logout"):
                self.send_response(204)
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

    return Handler


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake_keycloak(rsa_key: rsa.RSAPrivateKey) -> Iterator[FakeKeycloak]:
    """A fresh fake provider per test (its codes and refresh tokens are per test)."""
    fake = FakeKeycloak(rsa_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def flask_config(fake: FakeKeycloak, **extra: Any) -> dict[str, Any]:
    """``app.config`` keys pointing an app at ``fake``."""
    return {
        "SECRET_KEY": "test-secret-key-0123456789",
        "KEYCLOAK_SERVER_URL": fake.server_url,
        "KEYCLOAK_REALM": REALM,
        "KEYCLOAK_CLIENT_ID": CLIENT_ID,
        "KEYCLOAK_CLIENT_SECRET": CLIENT_SECRET,
        **extra,
    }


def build_app(config: Mapping[str, Any]) -> Flask:
    """A small app with one view per kind of protection."""
    app = Flask(__name__)
    app.config.update(config)
    Keycloak(app)

    @app.get("/")
    def home() -> Any:
        return {"user": current_user.username, "authenticated": current_user.is_authenticated}

    @app.get("/private")
    @login_required
    def private() -> Any:
        return {"user": g.kc_identity.username, "name": current_user.name}

    @app.get("/admin")
    @roles_required("realm:admin")
    def admin() -> Any:
        return {"admin": current_user.username}

    @app.get("/api/data")
    @bearer_required(roles=["api:reader"])
    def api_data() -> Any:
        return {"data": [1, 2, 3], "reader": current_user.username}

    @app.get("/api/me")
    @bearer_required
    def api_me() -> Any:
        return {"sub": current_user.sub, "token": current_access_token() is not None}

    return app


@pytest.fixture
def make_app(fake_keycloak: FakeKeycloak) -> Callable[..., Flask]:
    """Build the test app against the fake provider; keyword arguments are app.config keys."""

    def make(**config: Any) -> Flask:
        return build_app(flask_config(fake_keycloak, **config))

    return make


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class LiveApp:
    """A Flask (or any WSGI) app served over real HTTP on a free port."""

    app: Any
    server: BaseWSGIServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LiveApp]]:
    """Serve WSGI apps with werkzeug's ``make_server`` in threads; stopped after the test."""
    servers: list[BaseWSGIServer] = []

    def start(app: Flask | Any) -> LiveApp:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return LiveApp(app, server)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
