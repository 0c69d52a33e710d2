"""An OpenID Connect issuer inside the test process, for testing your own app without Keycloak.

:class:`LocalIssuer` has its own RSA key, JWKS, discovery document, authorization, token,
userinfo, introspection and end-session endpoints, and answers them the way Keycloak does
(``realm_access``, ``resource_access``, ``sid``, ``typ``, RFC 9207 ``iss``). It needs no
socket: :meth:`LocalIssuer.intercept` routes every ``requests`` call under its
``server_url`` to it in process, so the kc client inside the app under test talks to it
as it would to Keycloak, and checks state, nonce, PKCE, signatures and audiences for real.

Most tests use it through :class:`kc_core.testing.users.UserKit` (``kc_test.login(client,
"alice")``); its ``mint_*`` methods give tokens with any claims, roles, audiences and
lifetimes. These are *your* app's test tokens: kc's own suite tests against a real Keycloak.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

__all__ = ["DEFAULT_SERVER_URL", "IssuerRefusal", "LocalIssuer", "LocalUser"]

#: Where a :class:`LocalIssuer` lives unless told otherwise (``.test`` never resolves, so a
#: request that escapes the interception fails instead of reaching a real server).
DEFAULT_SERVER_URL = "http://keycloak.test"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_OIDC = "protocol/openid-connect"
_CODE_LIFETIME = 60.0
_REALM = "realm"


class IssuerRefusal(Exception):
    """The issuer refused a request, as Keycloak would (``error``, ``error_description``)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class LocalUser:
    """A user of the local issuer: the claims its tokens carry.

    ``roles`` are written as kc's role specs (``roles_required`` takes the same):
    ``realm:admin`` is a realm role, ``orders-api:editor`` a role of client ``orders-api``,
    and a bare ``editor`` a role of the client the token is issued to. ``claims`` are added
    to (and override) both the access and the ID token's claims.
    """

    username: str
    roles: tuple[str, ...] = ()
    email: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)
    sub: str = ""

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("a LocalUser needs a username")
        for name in ("roles", "groups"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if not self.sub:
            # Stable per username, so a test can predict it and sessions survive a re-login.
            object.__setattr__(self, "sub", str(uuid.uuid5(uuid.NAMESPACE_URL, self.username)))

    def profile(self) -> dict[str, Any]:
        """The profile claims Keycloak's default scopes put in tokens (``profile email``)."""
        display = self.name or self.username.replace(".", " ").title()
        given, _, family = display.partition(" ")
        claims: dict[str, Any] = {
            "preferred_username": self.username,
            "name": display,
            "given_name": given,
            "email": self.email or f"{self.username}@example.test",
            "email_verified": True,
        }
        if family:
            claims["family_name"] = family
        if self.groups:
            claims["groups"] = list(self.groups)
        return claims

    def role_claims(self, client_id: str) -> dict[str, Any]:
        """``realm_access`` and ``resource_access`` for a token issued to ``client_id``."""
        realm: list[str] = []
        clients: dict[str, list[str]] = {}
        for spec in self.roles:
            owner, sep, role = spec.rpartition(":")
            if not role or (sep and not owner):
                raise ValueError(
                    f"not a role spec: {spec!r} (write realm:ROLE, CLIENT:ROLE or ROLE)"
                )
            if owner == _REALM:
                realm.append(role)
            else:
                clients.setdefault(owner or client_id, []).append(role)
        claims: dict[str, Any] = {"realm_access": {"roles": realm}}
        if clients:
            claims["resource_access"] = {c: {"roles": r} for c, r in clients.items()}
        return claims


@dataclass(slots=True)
class _Session:
    """One SSO session: who logged in to which client, and since when."""

    sid: str
    user: LocalUser
    client_id: str
    scope: str
    auth_time: int
    audience: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Code:
    session: _Session
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    challenge_method: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


class LocalIssuer:
    """A Keycloak-like OpenID Connect issuer living in the test process.

    Args:
        server_url: the base URL the app is configured with (``KEYCLOAK_SERVER_URL``).
        realm: the realm name; the issuer is ``{server_url}/realms/{realm}``.
        clients: client ids and their secrets (``None`` for a public client); the token
            endpoint refuses other clients and wrong secrets (401 ``invalid_client``).
        lifetime: access and ID token lifetime in seconds (Keycloak's default: 300).
        clock: the issuer's wall clock.

    Example::

        issuer = LocalIssuer(clients={"web": "secret"})
        with issuer.intercept():
            token = issuer.mint_access_token(LocalUser("bob", roles=["realm:admin"]), "web")
    """

    def __init__(
        self,
        server_url: str = DEFAULT_SERVER_URL,
        realm: str = "test",
        *,
        clients: Mapping[str, str | None] | None = None,
        lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.realm = realm
        self.clients: dict[str, str | None] = dict(clients or {})
        self.lifetime = lifetime
        self._clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_urlsafe(12)
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Session] = {}
        self._sessions: dict[str, _Session] = {}

    # -- what Keycloak publishes --------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens, also the realm URL."""
        return f"{self.server_url}/realms/{self.realm}"

    def endpoint(self, name: str) -> str:
        """An endpoint URL by its discovery name (``token_endpoint`` ...)."""
        return str(self.openid_configuration()[name])

    def openid_configuration(self) -> dict[str, Any]:
        """The discovery document at ``/.well-known/openid-configuration``."""
        base = f"{self.issuer}/{_OIDC}"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "introspection_endpoint": f"{base}/token/introspect",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "revocation_endpoint": f"{base}/revoke",
            "jwks_uri": f"{base}/certs",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def jwks(self) -> dict[str, Any]:
        """The public signing key as a JWK Set (the ``jwks_uri`` document)."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kid": self.key_id,
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "n": _b64_int(numbers.n),
                    "e": _b64_int(numbers.e),
                }
            ]
        }

    # -- minting ------------------------------------------------------------------------

    def mint_access_token(
        self,
        user: LocalUser,
        client_id: str,
        *,
        audience: str | Iterable[str] | None = None,
        scope: str = "openid profile email",
        lifetime: float | None = None,
        sid: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token for ``user`` issued to ``client_id`` (its ``azp``).

        ``audience`` sets ``aud`` (default: ``client_id``; ``()`` for none); ``lifetime``
        in seconds, negative for an already expired token; ``claims`` are added last, so
        they can replace any claim (``{"iss": ...}`` for a token of another issuer).
        """
        now = int(self._clock())
        body: dict[str, Any] = {
            "exp": now + int(self.lifetime if lifetime is None else lifetime),
            "iat": now,
            "auth_time": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": _audience(audience, client_id),
            "sub": user.sub,
            "typ": "Bearer",
            "azp": client_id,
            "sid": sid or str(uuid.uuid4()),
            "scope": scope,
            **user.role_claims(client_id),
            **user.profile(),
            **user.claims,
            **(claims or {}),
        }
        if not body["aud"]:
            del body["aud"]
        return self.sign(body)

    def mint_id_token(
        self,
        user: LocalUser,
        client_id: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        lifetime: float | None = None,
        sid: str | None = None,
        auth_time: int | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed ID token for ``client_id``; ``access_token`` adds its ``at_hash``."""
        now = int(self._clock())
        body: dict[str, Any] = {
            "exp": now + int(self.lifetime if lifetime is None else lifetime),
            "iat": now,
            "auth_time": now if auth_time is None else auth_time,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": client_id,
            "sub": user.sub,
            "typ": "ID",
            "azp": client_id,
            "sid": sid or str(uuid.uuid4()),
            **user.profile(),
            **user.claims,
            **(claims or {}),
        }
        if nonce is not None:
            body["nonce"] = nonce
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            body["at_hash"] = _b64(digest[:16])
        return self.sign(body)

    def mint_logout_token(
        self, client_id: str, *, sid: str | None = None, sub: str | None = None
    ) -> str:
        """A back-channel ``logout_token`` for ``client_id`` naming a session or a user."""
        now = int(self._clock())
        body: dict[str, Any] = {
            "iat": now,
            "exp": now + 120,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": client_id,
            "typ": "Logout",
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sid is not None:
            body["sid"] = sid
        if sub is not None:
            body["sub"] = sub
        return self.sign(body, typ="logout+jwt")

    def sign(self, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
        """Any claims as a JWT signed with the issuer's key (RS256, its ``kid``)."""
        header = {"alg": "RS256", "typ": typ, "kid": self.key_id}
        signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode("ascii")
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode('ascii')}.{_b64(signature)}"

    def verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token this issuer signed and that has not expired.

        Raises:
            IssuerRefusal: ``invalid_token`` for anything else.
        """
        try:
            header_part, claims_part, signature_part = token.split(".")
            self._key.public_key().verify(
                _unb64(signature_part),
                f"{header_part}.{claims_part}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(_unb64(claims_part))
        except (ValueError, InvalidSignature, UnicodeError) as exc:
            raise IssuerRefusal(401, "invalid_token", "not a token of this issuer") from exc
        if not isinstance(claims, dict) or float(claims.get("exp", 0)) < self._clock():
            raise IssuerRefusal(401, "invalid_token", "the token has expired")
        return claims

    # -- the browser's side -------------------------------------------------------------

    def authorize(
        self,
        url: str,
        user: LocalUser,
        *,
        audience: str | Iterable[str] | None = None,
    ) -> str:
        """Answer a browser sent to the authorization endpoint, as if ``user`` logged in.

        Checks the request as Keycloak does (known client, ``response_type=code``, S256
        PKCE if a challenge is sent) and returns the redirect back to the app's
        ``redirect_uri`` carrying ``code``, ``state``, ``session_state`` and ``iss``.
        ``audience`` sets the ``aud`` of the access tokens this session gets.

        Raises:
            IssuerRefusal: the authorization request is not one Keycloak would accept.
        """
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}{parts.path}" != self.endpoint(
            "authorization_endpoint"
        ):
            raise IssuerRefusal(400, "invalid_request", f"not this issuer's login URL: {url}")
        query = dict(parse_qsl(parts.query))
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        if client_id not in self.clients:
            raise IssuerRefusal(400, "invalid_client", f"unknown client {client_id!r}")
        if query.get("response_type") != "code" or not redirect_uri:
            raise IssuerRefusal(400, "invalid_request", "response_type=code and a redirect_uri")
        method = query.get("code_challenge_method")
        if "code_challenge" in query and method != "S256":
            raise IssuerRefusal(400, "invalid_request", "only S256 PKCE is accepted")
        session = self._start_session(user, client_id, query.get("scope", "openid"), audience)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                session,
                redirect_uri,
                query.get("nonce"),
                query.get("code_challenge"),
                method,
                self._clock() + _CODE_LIFETIME,
            )
        answer = {"code": code, "session_state": session.sid, "iss": self.issuer}
        if "state" in query:
            answer["state"] = query["state"]
        return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(answer)}"

    def end_session(self, url: str) -> str | None:
        """Answer a browser sent to the end-session endpoint: end its session.

        Returns the ``post_logout_redirect_uri`` (with ``state``) to send the browser to,
        or ``None`` when the app gave none (Keycloak would show its own page).
        """
        query = dict(parse_qsl(urlsplit(url).query))
        hint = query.get("id_token_hint")
        if hint:
            sid = self.verified_claims(hint).get("sid")
            self.end_sessions(sid=sid if isinstance(sid, str) else None)
        target = query.get("post_logout_redirect_uri")
        if not target:
            return None
        if "state" in query:
            target += ("&" if "?" in target else "?") + urlencode({"state": query["state"]})
        return target

    def end_sessions(self, *, sid: str | None = None, sub: str | None = None) -> list[str]:
        """End SSO sessions by id or by user (an admin's "sign out"); their ids."""
        with self._lock:
            ended = [
                s.sid
                for s in self._sessions.values()
                if (sid is not None and s.sid == sid) or (sub is not None and s.user.sub == sub)
            ]
            for key in ended:
                del self._sessions[key]
            self._refresh = {t: s for t, s in self._refresh.items() if s.sid not in ended}
        return ended

    def reset(self) -> None:
        """Forget every session, code and refresh token (the keys stay): a test's clean slate."""
        with self._lock:
            self._codes.clear()
            self._refresh.clear()
            self._sessions.clear()

    def sessions_of(self, user: LocalUser) -> list[str]:
        """The ids of ``user``'s live SSO sessions."""
        with self._lock:
            return [s.sid for s in self._sessions.values() if s.user.sub == user.sub]

    # -- the back channel ---------------------------------------------------------------

    @contextlib.contextmanager
    def intercept(self) -> Iterator[LocalIssuer]:
        """Route every ``requests`` call under ``server_url`` to this issuer, in process.

        kc's HTTP client (and any other ``requests`` session of the process) then reaches
        the issuer without a socket; other URLs are untouched. Blocks nest.
        """
        original = requests.Session.get_adapter
        transport = _IssuerTransport(self)
        prefix = f"{self.server_url.lower()}/"

        def get_adapter(self: requests.Session, url: str) -> BaseAdapter:
            if url.lower().startswith(prefix):
                return transport
            return original(self, url)

        requests.Session.get_adapter = get_adapter  # type: ignore[method-assign]
        try:
            yield self
        finally:
            requests.Session.get_adapter = original  # type: ignore[method-assign]

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        """One back-channel HTTP request, answered as Keycloak would (JSON or an error)."""
        path = urlsplit(url).path
        base = urlsplit(self.issuer).path
        routes: dict[tuple[str, str], Callable[[Mapping[str, str], dict[str, str]], Any]] = {
            ("GET", f"{base}/.well-known/openid-configuration"): lambda h, f: (
                self.openid_configuration()
            ),
            ("GET", f"{base}/{_OIDC}/certs"): lambda h, f: self.jwks(),
            ("POST", f"{base}/{_OIDC}/token"): self._token,
            ("POST", f"{base}/{_OIDC}/token/introspect"): self._introspect,
            ("GET", f"{base}/{_OIDC}/userinfo"): self._userinfo,
            ("POST", f"{base}/{_OIDC}/userinfo"): self._userinfo,
            ("POST", f"{base}/{_OIDC}/logout"): self._logout,
            ("POST", f"{base}/{_OIDC}/revoke"): self._revoke,
        }
        route = routes.get((method.upper(), path))
        if route is None:
            return _json_answer(404, {"error": "not_found", "error_description": path})
        form = dict(parse_qsl(body.decode("utf-8", "replace"))) if body else {}
        try:
            result = route(CaseInsensitiveDict(headers), form)
        except IssuerRefusal as exc:
            return _json_answer(
                exc.status, {"error": exc.error, "error_description": exc.description}
            )
        if result is None:
            return _Answer(204, b"")
        return _json_answer(200, result)

    def _token(self, headers: Mapping[str, str], form: dict[str, str]) -> dict[str, Any]:
        client_id = self._authenticate_client(headers, form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(client_id, form)
        if grant == "refresh_token":
            with self._lock:
                session = self._refresh.pop(form.get("refresh_token", ""), None)
            if session is None or session.client_id != client_id:
                raise IssuerRefusal(400, "invalid_grant", "Invalid refresh token")
            return self._token_answer(session, nonce=None)
        if grant == "client_credentials":
            robot = LocalUser(f"service-account-{client_id}")
            token = self.mint_access_token(robot, client_id)
            return {"access_token": token, "expires_in": int(self.lifetime), "token_type": "Bearer"}
        raise IssuerRefusal(400, "unsupported_grant_type", f"grant {grant!r} is not supported")

    def _exchange_code(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.expires_at < self._clock():
            raise IssuerRefusal(400, "invalid_grant", "Code not valid")
        if code.session.client_id != client_id:
            raise IssuerRefusal(400, "invalid_grant", "Code was issued to another client")
        if form.get("redirect_uri") != code.redirect_uri:
            raise IssuerRefusal(400, "invalid_grant", "Incorrect redirect_uri")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            expected = _b64(hashlib.sha256(verifier.encode()).digest())
            if not verifier or not secrets.compare_digest(expected, code.challenge):
                raise IssuerRefusal(400, "invalid_grant", "PKCE verification failed")
        return self._token_answer(code.session, nonce=code.nonce)

    def _token_answer(self, session: _Session, *, nonce: str | None) -> dict[str, Any]:
        with self._lock:
            if session.sid not in self._sessions:
                raise IssuerRefusal(400, "invalid_grant", "Session not active")
        access = self.mint_access_token(
            session.user,
            session.client_id,
            audience=session.audience,
            scope=session.scope,
            sid=session.sid,
        )
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = session
        answer: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(self.lifetime),
            "refresh_expires_in": 1800,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session.sid,
            "scope": session.scope,
        }
        if "openid" in session.scope.split():
            answer["id_token"] = self.mint_id_token(
                session.user,
                session.client_id,
                nonce=nonce,
                access_token=access,
                sid=session.sid,
                auth_time=session.auth_time,
            )
        return answer

    def _introspect(self, headers: Mapping[str, str], form: dict[str, str]) -> dict[str, Any]:
        self._authenticate_client(headers, form)
        try:
            claims = self.verified_claims(form.get("token", ""))
        except IssuerRefusal:
            return {"active": False}
        sid = claims.get("sid")
        with self._lock:
            live = sid in self._sessions or claims.get("sub") == _robot_sub(claims)
        return {**claims, "active": live} if live else {"active": False}

    def _userinfo(self, headers: Mapping[str, str], form: dict[str, str]) -> dict[str, Any]:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise IssuerRefusal(401, "invalid_request", "Token not provided")
        claims = self.verified_claims(token)
        with self._lock:
            session = self._sessions.get(str(claims.get("sid")))
        if session is None:
            raise IssuerRefusal(401, "invalid_token", "User session not found")
        return {"sub": session.user.sub, **session.user.profile(), **session.user.claims}

    def _logout(self, headers: Mapping[str, str], form: dict[str, str]) -> None:
        client_id = self._authenticate_client(headers, form)
        with self._lock:
            session = self._refresh.get(form.get("refresh_token", ""))
        if session is None or session.client_id != client_id:
            raise IssuerRefusal(400, "invalid_grant", "Invalid refresh token")
        self.end_sessions(sid=session.sid)

    def _revoke(self, headers: Mapping[str, str], form: dict[str, str]) -> None:
        self._authenticate_client(headers, form)
        with self._lock:
            self._refresh.pop(form.get("token", ""), None)

    def _authenticate_client(self, headers: Mapping[str, str], form: dict[str, str]) -> str:
        """The client id a back-channel request authenticates as (Basic, post or public)."""
        scheme, _, credentials = headers.get("Authorization", "").partition(" ")
        given: str | None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials).decode()
            except (ValueError, UnicodeError) as exc:
                raise IssuerRefusal(401, "invalid_client", "bad Basic credentials") from exc
            name, _, secret = decoded.partition(":")
            client_id, given = unquote(name), unquote(secret)
        else:
            given = form.get("client_secret")
            client_id = form.get("client_id", "")
        if client_id not in self.clients:
            raise IssuerRefusal(
                401, "invalid_client", "Invalid client or Invalid client credentials"
            )
        expected = self.clients[client_id]
        if expected is not None and not secrets.compare_digest(
            (given or "").encode(), expected.encode()
        ):
            raise IssuerRefusal(
                401, "unauthorized_client", "Invalid client or Invalid client credentials"
            )
        return client_id

    def _start_session(
        self,
        user: LocalUser,
        client_id: str,
        scope: str,
        audience: str | Iterable[str] | None,
    ) -> _Session:
        aud = None if audience is None else tuple(_audience(audience, client_id))
        session = _Session(str(uuid.uuid4()), user, client_id, scope, int(self._clock()), aud)
        with self._lock:
            self._sessions[session.sid] = session
        return session


class _IssuerTransport(BaseAdapter):
    """A ``requests`` transport answering from a :class:`LocalIssuer` instead of a socket."""

    def __init__(self, issuer: LocalIssuer) -> None:
        super().__init__()
        self._issuer = issuer

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        body = request.body or b""
        answer = self._issuer.handle(
            request.method or "GET",
            request.url or "",
            dict(request.headers),
            body.encode() if isinstance(body, str) else bytes(body),
        )
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict({"Content-Type": answer.content_type})
        response._content = answer.body
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing is pooled."""


def _json_answer(status: int, body: Any) -> _Answer:
    return _Answer(status, json.dumps(body).encode())


def _audience(audience: str | Iterable[str] | None, client_id: str) -> list[str]:
    if audience is None:
        return [client_id]
    if isinstance(audience, str):
        return [audience]
    return list(audience)


def _robot_sub(claims: Mapping[str, Any]) -> str:
    robot = LocalUser(f"service-account-{claims.get('azp')}")
    return robot.sub


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64_json(value: Mapping[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _b64_int(number: int) -> str:
    return _b64(number.to_bytes((number.bit_length() + 7) // 8, "big"))
