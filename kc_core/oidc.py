"""The OpenID Connect / OAuth 2.0 client: every flow Keycloak offers, from one object."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode

import requests
from cryptography.hazmat.primitives import serialization
from josepy import jwa

from .config import Config
from .discovery import Discovery
from .errors import (
    DeviceFlowError,
    IssuerMismatch,
    KeycloakError,
    LoginError,
    OAuthError,
    StateMismatch,
    SubjectMismatch,
)
from .http import HttpClient
from .jwks import RemoteKeySet
from .roles import has_role
from .singleflight import SingleFlight
from .tokens import TokenKind, TokenValidator

__all__ = ["Client", "DeviceAuthorization", "LoginRequest", "TokenSet"]

# Keycloak's default login timeout: a user may spend that long on the login page.
_PENDING_LOGIN_TTL = 1800.0
_PENDING_LOGIN_LIMIT = 10_000
_PAT_MARGIN = 30.0
# The earlier library's default ``callback_uri``, for a client built from keycloak.json alone.
SEED_CALLBACK_URI = "http://localhost/kc/callback"
# A refresh result keeps serving the same refresh token this long (see SingleFlight).
_REFRESH_LINGER = 5.0
# What ties the browser's answer to this login: never taken from extra_params.
_PROTECTED_LOGIN_PARAMS = frozenset(
    {"client_id", "code_challenge", "code_challenge_method", "nonce", "redirect_uri",
     "response_type", "state"}
)  # fmt: skip
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# Discovery's promise to send ``iss`` with every authorization response (RFC 9207).
_ISS_PARAMETER = "authorization_response_iss_parameter_supported"


class _NotGiven:
    """The default of ``callback(iss=)``: the caller did not read the callback's ``iss``."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


_NOT_GIVEN = _NotGiven()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE ``verifier`` (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class TokenSet(dict[str, Any]):
    """Tokens from one token-endpoint answer, with expiry instants computed at receipt.

    It is also the answer's JSON as a read-only dict (``tokens["access_token"]``,
    ``json.dumps(tokens)``), as the earlier library returned it.
    """

    access_token: str
    token_type: str
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    id_token: str | None = None
    scopes: frozenset[str] = frozenset()
    session_state: str | None = None
    #: Validated ID-token claims (the identity), when an ID token came and was checked.
    id_claims: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        dict.update(self, self.raw)

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        received_at: float | None = None,
        id_claims: Mapping[str, Any] | None = None,
    ) -> TokenSet:
        """Build a token set from a token endpoint's JSON answer."""
        if not isinstance(body.get("access_token"), str):
            raise KeycloakError("the token endpoint answered without an access_token")
        now = time.time() if received_at is None else received_at
        refresh_expires_in = body.get("refresh_expires_in")
        return cls(
            access_token=body["access_token"],
            token_type=str(body.get("token_type", "Bearer")),
            expires_at=now + float(body.get("expires_in", 0)),
            refresh_token=body.get("refresh_token"),
            # Keycloak says 0 for offline tokens, which do not expire on their own.
            refresh_expires_at=(
                now + float(refresh_expires_in)
                if isinstance(refresh_expires_in, int | float) and refresh_expires_in > 0
                else None
            ),
            id_token=body.get("id_token"),
            scopes=frozenset(str(body.get("scope", "")).split()),
            session_state=body.get("session_state"),
            id_claims=id_claims,
            raw=MappingProxyType(dict(body)),
        )

    def expires_within(self, seconds: float, *, now: float | None = None) -> bool:
        """Whether the access token expires in less than ``seconds``."""
        return (time.time() if now is None else now) + seconds >= self.expires_at

    def refresh_expires_within(self, seconds: float, *, now: float | None = None) -> bool:
        """Whether the refresh token expires in less than ``seconds`` (never, for offline ones)."""
        if self.refresh_expires_at is None:
            return False
        return (time.time() if now is None else now) + seconds >= self.refresh_expires_at

    def __bool__(self) -> bool:
        return True  # a token set is never "empty", even one built without its raw answer

    def __reduce__(self) -> Any:
        # The dict part is read-only, so pickle and copy rebuild it from the fields.
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        values["raw"] = dict(self.raw)
        return (_token_set_from_fields, (values,))

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a TokenSet is read-only (dict(tokens) gives a mutable copy)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only


def _token_set_from_fields(values: dict[str, Any]) -> TokenSet:
    values["raw"] = MappingProxyType(values["raw"])
    return TokenSet(**values)


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """A started login: where to send the browser and what the callback must check.

    It unpacks like the seed API's pair, ``url, state = client.login()``. Keep it (or at
    least ``state``) in the user's session and hand it back to :meth:`Client.callback`.
    """

    url: str
    state: str
    nonce: str
    code_verifier: str | None
    redirect_uri: str
    max_age: float | None = None
    created_at: float = field(default_factory=time.time)

    def __iter__(self) -> Iterator[str]:
        return iter((self.url, self.state))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, for keeping the login in a (server-side or encrypted) session.

        It holds the PKCE verifier: never put it in a cookie that is only signed.
        """
        return {
            "url": self.url,
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "redirect_uri": self.redirect_uri,
            "max_age": self.max_age,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoginRequest:
        """The login :meth:`to_dict` wrote.

        Raises:
            LoginError: ``data`` is not a stored login.
        """
        try:
            return cls(
                url=str(data["url"]),
                state=str(data["state"]),
                nonce=str(data["nonce"]),
                code_verifier=(
                    None if data.get("code_verifier") is None else str(data["code_verifier"])
                ),
                redirect_uri=str(data["redirect_uri"]),
                max_age=None if data.get("max_age") is None else float(data["max_age"]),
                created_at=float(data.get("created_at", time.time())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LoginError(f"not a stored login: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """The answer of the device authorization endpoint (RFC 8628)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float
    interval: float


class _PendingLogins:
    """Logins started by this client and not finished yet: single use, bounded, expiring.

    It also remembers, for as long as a login may live, the states already used, so a
    replayed callback is refused even when the caller keeps the :class:`LoginRequest`
    itself. A login started by another process (another worker of the same app) is
    neither pending nor used here; the caller's own session is its single-use record.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logins: OrderedDict[str, LoginRequest] = OrderedDict()
        self._used: OrderedDict[str, float] = OrderedDict()
        self._by_nonce: dict[str, str] = {}  # nonce -> state, for the earlier callback(code)

    def add(self, login: LoginRequest) -> None:
        with self._lock:
            self._prune(time.time())
            self._logins[login.state] = login
            self._by_nonce[login.nonce] = login.state
            while len(self._logins) > _PENDING_LOGIN_LIMIT:
                self._forget(self._logins.popitem(last=False)[1])

    def claim(self, state: str) -> tuple[LoginRequest | None, bool]:
        """Take the login for ``state``: ``(login or None, whether state was used before)``.

        Either way ``state`` counts as used from now on.
        """
        with self._lock:
            now = time.time()
            self._prune(now)
            if state in self._used:
                return None, True
            self._mark_used(state, now)
            login = self._logins.pop(state, None)
            if login is not None:
                self._by_nonce.pop(login.nonce, None)
            return login, False

    def claim_by_nonce(self, nonce: str) -> LoginRequest | None:
        """Take the pending login that sent ``nonce`` (its state counts as used from now on)."""
        with self._lock:
            now = time.time()
            self._prune(now)
            state = self._by_nonce.pop(nonce, None)
            login = None if state is None else self._logins.pop(state, None)
            if login is not None:
                self._mark_used(login.state, now)
            return login

    def claim_only(self) -> LoginRequest | None:
        """Take the one pending login, if exactly one is pending."""
        with self._lock:
            now = time.time()
            self._prune(now)
            if len(self._logins) != 1:
                return None
            login = self._logins.popitem()[1]
            self._forget(login)
            self._mark_used(login.state, now)
            return login

    def _forget(self, login: LoginRequest) -> None:
        self._by_nonce.pop(login.nonce, None)

    def __len__(self) -> int:
        with self._lock:
            self._prune(time.time())
            return len(self._logins)

    def _mark_used(self, state: str, now: float) -> None:
        self._used[state] = now
        while len(self._used) > _PENDING_LOGIN_LIMIT:
            self._used.popitem(last=False)

    def _prune(self, now: float) -> None:
        while self._logins:
            state, login = next(iter(self._logins.items()))
            if login.created_at + _PENDING_LOGIN_TTL > now:
                break
            del self._logins[state]
            self._forget(login)
        while self._used:
            state, used_at = next(iter(self._used.items()))
            if used_at + _PENDING_LOGIN_TTL > now:
                break
            del self._used[state]


class Client:
    """A Keycloak OpenID Connect client: login, tokens, userinfo, logout, UMA basics.

    An ordinary object (no singleton), safe to share between threads: per-user data is
    returned to the caller, never kept on the client (except logins started with
    :meth:`login` and not finished, remembered single-use so the earlier ``callback(code)``
    stays safe). Built from a :class:`Config`, or, with no arguments, from the environment
    and ``keycloak.json`` as the earlier library was: then ``Client(callback_uri,
    username, password)`` take that library's arguments (the redirect URI, default
    :data:`SEED_CALLBACK_URI`, and the user whose tokens :attr:`tokens` holds; without
    them, the client's own service account). See docs/compat.md.

    Example::

        client = Client(Config(server_url="https://sso.example.com", realm="shop",
                               client_id="web", client_secret="...",
                               redirect_uri="https://shop.example.com/callback"))
        login = client.login()                    # send the browser to login.url
        tokens = client.callback(code, state=state, login=login)
        tokens.id_claims["preferred_username"]

    ``clock`` is the wall clock the token validator reads (``time.time``); tests move it to
    see a real token expire, since Keycloak cannot issue an already expired one.
    """

    def __init__(
        self,
        config: Config | str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        callback_uri: str | None = None,
        clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> None:
        if isinstance(config, str):  # the earlier Client(callback_uri)
            config, callback_uri = None, config
        if callback_uri is not None:
            overrides["redirect_uri"] = callback_uri
        if config is None:
            config = Config.load(**overrides)
            if not config.redirect_uri:
                config = config.replace(redirect_uri=SEED_CALLBACK_URI)
        elif overrides:
            config = config.replace(**overrides)
        self.config = config
        self._username, self._password = username, password
        self._own: TokenSet | None = None  # the client's own tokens (earlier ``tokens``)
        self._own_lock = threading.Lock()
        self._ticket: str | None = None  # the last permission ticket, for the earlier rpt()
        # One PKCE verifier for the logins this client remembers, so that the earlier
        # callback(code), which names no login, can send it (see docs/compat.md).
        self._seed_verifier = secrets.token_urlsafe(64)
        self._clock = clock  # the validator's wall clock (tests move it past a token's exp)
        self.http = HttpClient(config)
        self.discovery = Discovery(config, self.http)
        self.keys = RemoteKeySet(
            self.http,
            lambda: self.discovery.endpoint("jwks_uri"),
            refetch_interval=config.jwks_refetch_interval,
            max_age=config.jwks_max_age,
        )
        self._validator: TokenValidator | None = None
        self._validator_lock = threading.Lock()
        self._pending = _PendingLogins()
        self._refreshes: SingleFlight[TokenSet] = SingleFlight(linger=_REFRESH_LINGER)
        self._pat_flight: SingleFlight[TokenSet] = SingleFlight()
        self._pat: TokenSet | None = None
        self._signing_key: Any = None
        if config.client_auth_method == "private_key_jwt" and config.private_key:
            self._signing_key = serialization.load_pem_private_key(
                config.private_key.encode(), password=None
            )

    # -- set-up -------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Fetch discovery metadata and signing keys now, so no request waits for them."""
        self.validator  # noqa: B018 - building it fetches discovery
        self.keys.refresh()

    @property
    def validator(self) -> TokenValidator:
        """The :class:`TokenValidator` for this realm and client (built on first use)."""
        validator = self._validator
        if validator is None:
            with self._validator_lock:
                validator = self._validator
                if validator is None:
                    issuers = {self.discovery.issuer, *self.config.extra_issuers}
                    validator = self._validator = TokenValidator(
                        self.keys,
                        issuer=issuers,
                        audience=self.config.expected_audience,
                        client_id=self.config.client_id,
                        authorized_parties=self.config.authorized_parties,
                        verify_audience=self.config.verify_token_audience,
                        algorithms=self.config.algorithms,
                        leeway=self.config.leeway,
                        cache_size=self.config.token_cache_size,
                        max_token_size=self.config.max_token_size,
                        clock=self._clock,
                    )
        return validator

    def close(self) -> None:
        """Release pooled connections."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- token validation -----------------------------------------------------------------

    def validate_access_token(self, token: str) -> Mapping[str, Any]:
        """Validate an access token (signature, iss, aud, exp, nbf, iat, typ); return its claims.

        Raises:
            TokenError: a subclass naming why the token is rejected.
        """
        return self.validator.validate(token)

    def decode(self, token: str) -> Mapping[str, Any]:
        """The seed's name for :meth:`validate_access_token`: validates, never just decodes."""
        return self.validator.validate(token)

    def validate_id_token(
        self,
        token: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        max_age: float | None = None,
    ) -> Mapping[str, Any]:
        """Validate an ID token for this client (aud, azp, nonce, at_hash, ...)."""
        return self.validator.validate(
            token, kind="id", nonce=nonce, access_token=access_token, max_age=max_age
        )

    def validate_logout_token(self, token: str) -> Mapping[str, Any]:
        """Validate a back-channel ``logout_token`` (typ, events, sid/sub, no nonce)."""
        return self.validator.validate(token, kind="logout")

    def validate(self, token: str, *, kind: TokenKind = "access") -> Mapping[str, Any]:
        """Validate any kind of token this client accepts."""
        return self.validator.validate(token, kind=kind)

    # -- browser login --------------------------------------------------------------------

    def login(
        self,
        redirect_uri: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        prompt: str | None = None,
        login_hint: str | None = None,
        kc_idp_hint: str | None = None,
        ui_locales: str | None = None,
        max_age: float | None = None,
        extra_params: Mapping[str, str] | None = None,
        pkce: bool = True,
        remember: bool = True,
    ) -> LoginRequest:
        """Start a login: a fresh single-use state, a nonce and a PKCE S256 challenge.

        Returns a :class:`LoginRequest`; send the browser to its ``url``. ``pkce=False`` is
        refused for public clients, which have nothing else protecting their code.
        ``remember=False`` keeps the login out of this client's pending logins: the caller
        stores it (a web session) and finishes with ``callback(code, state=, login=)``; it
        also gets a PKCE verifier of its own, where remembered logins of a confidential
        client share one per client (the earlier ``callback(code)`` must know it before it
        knows the login; the nonce then ties the code to its login).
        ``extra_params`` adds authorization parameters, but cannot replace ``state``,
        ``nonce``, ``redirect_uri`` or the PKCE challenge.

        Raises:
            LoginError: no redirect URI, or ``pkce=False`` for a public client.
        """
        redirect = redirect_uri or self.config.redirect_uri
        if not redirect:
            raise LoginError("login needs a redirect_uri (argument or Config.redirect_uri)")
        if not pkce and self.config.public_client:
            raise LoginError("public clients must use PKCE")
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = None
        if pkce:
            shared = remember and not self.config.public_client
            verifier = self._seed_verifier if shared else secrets.token_urlsafe(64)
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect,
            "scope": _scope(scopes if scopes is not None else self.config.scopes),
            "state": state,
            "nonce": nonce,
        }
        if verifier is not None:
            params["code_challenge"] = pkce_challenge(verifier)
            params["code_challenge_method"] = "S256"
        optional = {
            "prompt": prompt,
            "login_hint": login_hint,
            "kc_idp_hint": kc_idp_hint,
            "ui_locales": ui_locales,
            "max_age": None if max_age is None else str(int(max_age)),
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        for key, value in (extra_params or {}).items():
            if key in _PROTECTED_LOGIN_PARAMS:
                raise LoginError(f"extra_params cannot set {key}")
            params[key] = value
        url = f"{self.discovery.browser_endpoint('authorization_endpoint')}?{urlencode(params)}"
        login = LoginRequest(url, state, nonce, verifier, redirect, max_age)
        if remember:
            self._pending.add(login)
        return login

    def callback(
        self,
        code: str,
        state: str | None = None,
        *,
        login: LoginRequest | None = None,
        code_verifier: str | None = None,
        nonce: str | None = None,
        redirect_uri: str | None = None,
        iss: str | _NotGiven | None = _NOT_GIVEN,
    ) -> TokenSet:
        """Finish a login: exchange ``code`` and validate the ID token it brings.

        The recommended form passes the callback's ``state`` and the :class:`LoginRequest`
        kept in the user's session, ``callback(code, state=state, login=login)``: the state
        must match the login's and is accepted once; the PKCE verifier, nonce and redirect
        URI come from the login. ``callback(code, state=state)`` uses the login this client
        remembers for that state (started in this process). The earlier form
        ``callback(code)`` exchanges the code with the PKCE verifier this client's
        remembered logins share, then takes the pending login whose nonce the ID token
        carries (single use, unexpired, started by this client); it cannot check the
        browser's state, which the caller must (as the earlier examples do). A public client
        has no shared verifier: there it works only while exactly one login is pending.
        ``code_verifier``, ``nonce`` and ``redirect_uri`` override what the login holds;
        without a login or state they are the low-level form for callers that checked the
        state themselves.

        ``iss`` is the callback's ``iss`` parameter (``None`` when it had none): it must be
        this realm's issuer, and it must be there when discovery announces
        ``authorization_response_iss_parameter_supported`` (RFC 9207; Keycloak does). Web
        apps pass it; leaving it out skips the check.

        Raises:
            StateMismatch: the state is unknown, reused or does not match ``login``.
            IssuerMismatch: ``iss`` is another server's, or missing though announced.
            LoginError: nothing tells which login the code belongs to.
            OAuthError: Keycloak refused the code (``invalid_grant``: reused, expired ...).
            TokenError: the ID token failed validation (``NonceMismatch``, ...).
        """
        if login is not None:
            if state is None:
                raise LoginError("pass the callback's state= along with the login it belongs to")
            if not secrets.compare_digest(state.encode(), login.state.encode()):
                raise StateMismatch("the callback's state is not the one of this login")
            _, reused = self._pending.claim(state)
            if reused:
                raise StateMismatch("this login was already completed (state reused)")
        elif state is not None:
            login, reused = self._pending.claim(state)
            if login is None:
                raise StateMismatch(
                    "this state was already used"
                    if reused
                    else "unknown or expired state (pass login= when the login was started "
                    "by another process)"
                )
        elif code_verifier is None and nonce is None and not self.config.public_client:
            return self._seed_callback(code, redirect_uri, iss)
        elif code_verifier is None and nonce is None:
            login = self._pending.claim_only()
            if login is None:
                raise LoginError(
                    "callback(code) cannot tell which login this code belongs to "
                    f"({len(self._pending)} pending); pass state= (and the LoginRequest) "
                    "from the callback request"
                )
        if login is not None:
            code_verifier = code_verifier if code_verifier is not None else login.code_verifier
            nonce = nonce if nonce is not None else login.nonce
            redirect_uri = redirect_uri or login.redirect_uri
        redirect = redirect_uri or self.config.redirect_uri
        if not redirect:
            raise LoginError("callback needs the redirect_uri the login used")
        if not isinstance(iss, _NotGiven):
            self._check_response_issuer(iss)
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
        if code_verifier is not None:
            data["code_verifier"] = code_verifier
        body = self._token_request(data)
        return self._token_set(
            body,
            nonce=nonce,
            max_age=login.max_age if login else None,
            require_id_token=True,
        )

    def _seed_callback(
        self, code: str, redirect_uri: str | None, iss: str | _NotGiven | None
    ) -> TokenSet:
        """The earlier ``callback(code)``: the login is found by the ID token's nonce."""
        if not len(self._pending):
            raise LoginError(
                "callback(code) found no login pending in this process; pass state= (and "
                "the LoginRequest) from the callback request"
            )
        redirect = redirect_uri or self.config.redirect_uri
        if not redirect:
            raise LoginError("callback needs the redirect_uri the login used")
        if not isinstance(iss, _NotGiven):
            self._check_response_issuer(iss)
        body = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": self._seed_verifier,
            }
        )
        id_token = body.get("id_token") if isinstance(body, dict) else None
        # Read unchecked only to find the login; _token_set then checks the token fully.
        nonce = _unverified_claims(id_token).get("nonce") if isinstance(id_token, str) else None
        login = self._pending.claim_by_nonce(nonce) if isinstance(nonce, str) else None
        if login is None:
            raise StateMismatch(
                "this code's login is not pending here (not started by this client, "
                "expired or already completed)"
            )
        return self._token_set(
            body, nonce=login.nonce, max_age=login.max_age, require_id_token=True
        )

    # -- other grants ---------------------------------------------------------------------

    def refresh(self, refresh_token: str, *, timeout: float | None = None) -> TokenSet:
        """New tokens for a refresh token (also an offline one).

        Concurrent refreshes of the same token share one request and its :class:`TokenSet`;
        for a few seconds afterwards the same token keeps getting that result, so a request
        racing another one of the same session does not spend the token twice. ``timeout``
        bounds the call instead of the configured timeouts (the engine's silent refresh
        passes a short one).

        Raises:
            OAuthError: ``invalid_grant`` when the token expired, was revoked or its session
                ended.
            KeycloakUnreachable: no answer within the timeout.
        """
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._refreshes.run(
            refresh_token, lambda: self._token_set(self._token_request(data, timeout=timeout))
        )

    def client_credentials(self, scopes: Iterable[str] | None = None) -> TokenSet:
        """Tokens for the client itself (its service account)."""
        data = {"grant_type": "client_credentials"}
        if scopes is not None:
            data["scope"] = _scope(scopes)
        return self._token_set(self._token_request(data))

    def password_grant(
        self, username: str, password: str, *, scopes: Iterable[str] | None = None
    ) -> TokenSet:
        """Legacy: the resource owner password grant. Prefer a browser login or the device flow.

        Kept for tests and migration of old scripts; it bypasses Keycloak's login page
        (no MFA, no identity brokering) and is removed from OAuth 2.1.

        Raises:
            OAuthError: ``invalid_grant`` for a wrong password or a disabled user,
                ``unauthorized_client`` when the client has direct grants switched off.
        """
        data = {
            "grant_type": "password",
            "username": username,
            "password": password,
            "scope": _scope(scopes if scopes is not None else self.config.scopes),
        }
        return self._token_set(self._token_request(data))

    def exchange_token(
        self,
        subject_token: str,
        *,
        audience: str | None = None,
        requested_token_type: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> TokenSet:
        """Keycloak's standard token exchange (RFC 8693) of a token issued to another client."""
        data = {
            "grant_type": _TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": _ACCESS_TOKEN_TYPE,
        }
        if audience is not None:
            data["audience"] = audience
        if requested_token_type is not None:
            data["requested_token_type"] = requested_token_type
        if scopes is not None:
            data["scope"] = _scope(scopes)
        return self._token_set(self._token_request(data))

    # -- device flow ------------------------------------------------------------------------

    def start_device_authorization(
        self, scopes: Iterable[str] | None = None
    ) -> DeviceAuthorization:
        """Start the device flow: show ``user_code`` and ``verification_uri`` to the user."""
        data = {"scope": _scope(scopes if scopes is not None else self.config.scopes)}
        url = self.discovery.endpoint("device_authorization_endpoint")
        body = self.post_authenticated(url, data)
        now = time.time()
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("device_code", "user_code", "verification_uri")
        ):
            raise KeycloakError("the device authorization endpoint answered without a code")
        return DeviceAuthorization(
            device_code=body["device_code"],
            user_code=body["user_code"],
            verification_uri=body["verification_uri"],
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_at=now + float(body.get("expires_in", 600)),
            # RFC 8628 section 3.2: 5 seconds when the server names no interval.
            interval=float(body.get("interval", 5)),
        )

    def poll_device_authorization(
        self,
        device: DeviceAuthorization,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> TokenSet:
        """Poll until the user approves; honours ``interval`` and ``slow_down``.

        The first poll goes out at once; after ``authorization_pending`` it waits
        ``interval`` seconds, and after ``slow_down`` it adds 5 seconds to the interval for
        every later poll (RFC 8628 section 3.5). ``sleep`` does the waiting (the async
        client passes a cancellable one).

        Raises:
            DeviceFlowError: the user denied (``access_denied``) or the code expired
                (``expired_token``, also raised locally once ``expires_at`` has passed).
            OAuthError: any other refusal (``invalid_client``, ``invalid_grant``, ...).
        """
        interval = device.interval
        while True:
            if time.time() >= device.expires_at:
                raise DeviceFlowError(400, "expired_token", "the device code expired")
            try:
                body = self._token_request(
                    {"grant_type": _DEVICE_CODE, "device_code": device.device_code}
                )
            except OAuthError as exc:
                if exc.error == "authorization_pending":
                    sleep(interval)
                    continue
                if exc.error == "slow_down":
                    interval += 5  # RFC 8628 section 3.5
                    sleep(interval)
                    continue
                if exc.error in ("access_denied", "expired_token"):
                    raise DeviceFlowError(
                        exc.status, exc.error, exc.error_description, url=exc.url
                    ) from exc
                raise
            return self._token_set(body)

    # -- userinfo, introspection, revocation, logout ----------------------------------------

    def fetch_userinfo(
        self, access_token: str | None = None, *, sub: str | None = None
    ) -> dict[str, Any]:
        """The userinfo endpoint's claims for ``access_token``, as a new plain dict.

        Without ``access_token``: for the client's own token (:attr:`access_token`).

        Keycloak answers JSON, or a signed JWT when the client's *user info signed response
        algorithm* is set; the JWT is verified (signature, iss, aud) before its claims are
        returned. A plain dict, as the seed returned, so it can go straight into a session
        or ``jsonify``. Pass ``sub``, the ID token's (``tokens.id_claims["sub"]``): the
        answer must name that same user (OIDC Core 5.3.2).

        Raises:
            OAuthError: Keycloak refused the token (``invalid_token``: expired, revoked,
                session ended, ...).
            SubjectMismatch: the answer's ``sub`` is not ``sub``.
            TokenError: the signed answer failed validation.
        """
        if access_token is None:
            access_token = self.access_token
        url = self.discovery.endpoint("userinfo_endpoint")
        # A refused token answers 401 with the error in WWW-Authenticate (RFC 6750 section 3);
        # the HTTP layer reads it from there into the OAuthError.
        response = self.http.request(
            "GET", url, headers={"Authorization": f"Bearer {access_token}"}, oauth=True
        )
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if content_type == "application/jwt":
            claims = dict(self.validator.validate(response.text.strip(), kind="userinfo"))
        else:
            claims = _json_object(response, "userinfo")
        if sub is not None and not (
            isinstance(claims.get("sub"), str)
            and secrets.compare_digest(claims["sub"].encode(), sub.encode())
        ):
            raise SubjectMismatch(
                f"the userinfo answer names sub {claims.get('sub')!r}, not the session's {sub!r}"
            )
        return claims

    def introspect(self, token: str, *, token_type_hint: str | None = None) -> dict[str, Any]:
        """RFC 7662 introspection (also for RPTs); ``active`` says whether the token is live.

        Needs a confidential client. An expired, revoked or foreign token is not an error:
        the answer is ``{"active": False}``. The answer is Keycloak's own: since 26.6.2
        Keycloak answers ``active: false`` to a client that the token's ``aud`` does not name
        (a refresh token: to any client but the one it was issued to), even the client the
        token was issued to; earlier releases answer any confidential client of the realm.
        """
        data = {"token": token}
        if token_type_hint is not None:
            data["token_type_hint"] = token_type_hint
        url = self.discovery.endpoint("introspection_endpoint")
        body = self.post_authenticated(url, data)
        if not isinstance(body, dict):
            raise KeycloakError("the introspection answer is not a JSON object")
        return body

    def revoke(self, token: str, *, token_type_hint: str | None = None) -> None:
        """RFC 7009 revocation of an access or refresh token."""
        data = {"token": token}
        if token_type_hint is not None:
            data["token_type_hint"] = token_type_hint
        url = self.discovery.endpoint("revocation_endpoint")
        self._refreshes.forget(token)
        self.post_authenticated(url, data)

    def logout_url(
        self,
        *,
        id_token_hint: str | None = None,
        post_logout_redirect_uri: str | None = None,
        state: str | None = None,
    ) -> str:
        """The RP-initiated logout URL (Keycloak's end-session endpoint)."""
        params = {"client_id": self.config.client_id}
        optional = {
            "id_token_hint": id_token_hint,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "state": state,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return f"{self.discovery.browser_endpoint('end_session_endpoint')}?{urlencode(params)}"

    def logout(self, access_token: str | None = None, refresh_token: str | None = None) -> None:
        """End a Keycloak session from the server side, with its refresh token.

        The earlier form ``logout(access_token, refresh_token)`` is accepted (Keycloak needs
        only the refresh token); so is kc's ``logout(refresh_token)``. With neither, the
        client's own session (:attr:`tokens`) ends.

        Raises:
            LoginError: only an access token was given (it cannot end a session).
            OAuthError: Keycloak refused the refresh token.
        """
        if refresh_token is None and access_token is not None:
            if _unverified_claims(access_token).get("typ") not in ("Refresh", "Offline"):
                raise LoginError("logout needs the session's refresh token")
            refresh_token = access_token  # kc's logout(refresh_token)
        if refresh_token is None:
            own, self._own = self._own, None
            refresh_token = None if own is None else own.refresh_token
            if refresh_token is None:
                return  # no session of its own (a service account has none to end)
        url = self.discovery.endpoint("end_session_endpoint")
        self._refreshes.forget(refresh_token)
        self.post_authenticated(url, {"refresh_token": refresh_token}, expected=(200, 204))

    # -- the client's own tokens (the earlier library's properties) ---------------------------

    @property
    def tokens(self) -> TokenSet:
        """The client's own tokens: the configured user's, else its service account's.

        Fetched on first use with ``pat(username, password)``; assign a token answer to
        replace them. Never a browser user's: those belong in that user's session.
        """
        own = self._own
        if own is None:
            with self._own_lock:
                own = self._own
                if own is None:
                    own = self._own = self.pat(self._username, self._password)
        return own

    @tokens.setter
    def tokens(self, value: Mapping[str, Any]) -> None:
        self._own = value if isinstance(value, TokenSet) else TokenSet.from_response(value)

    @property
    def access_token(self) -> str:
        """The client's own access token (see :attr:`tokens`)."""
        return self.tokens.access_token

    @property
    def refresh_token(self) -> str | None:
        """The client's own refresh token (``None`` for a service account)."""
        return self.tokens.refresh_token

    @property
    def scope(self) -> str:
        """The scopes of the client's own tokens, as Keycloak lists them."""
        return " ".join(sorted(self.tokens.scopes))

    @property
    def token_type(self) -> str:
        """The type of the client's own access token (``Bearer``)."""
        return self.tokens.token_type

    def refresh_tokens(self) -> None:
        """Renew the client's own tokens: the refresh grant, or a new service-account token."""
        current = self.tokens
        with self._own_lock:
            if current.refresh_token is not None:
                self._own = self.refresh(current.refresh_token)
            else:  # Keycloak gives client-credentials tokens no refresh token
                self._own = self.client_credentials()

    @property
    def userinfo(self) -> dict[str, Any]:
        """The userinfo of the client's own access token."""
        return self.fetch_userinfo()

    @property
    def jwks(self) -> dict[str, Any]:
        """The realm's public keys, as its JWKS document (``{"keys": [...]}``)."""
        response = self.http.request("GET", self.discovery.endpoint("jwks_uri"))
        return _json_object(response, "JWKS")

    # -- UMA basics (the earlier library's calls) ---------------------------------------------

    def pat(self, username: str | None = None, password: str | None = None) -> TokenSet:
        """A Protection API token: the resource server's own token, cached until near expiry.

        With ``username`` and ``password``: that user's tokens (the password grant), as the
        earlier library's ``pat(username, password)``; not cached.
        """
        if username is not None and password is not None:
            return self.password_grant(username, password)
        pat = self._pat
        if pat is not None and not pat.expires_within(_PAT_MARGIN):
            return pat

        def fetch() -> TokenSet:
            current = self._pat
            if current is not None and not current.expires_within(_PAT_MARGIN):
                return current
            self._pat = self.client_credentials()
            return self._pat

        return self._pat_flight.run("pat", fetch)

    def ticket(
        self, resources: Iterable[Mapping[str, Any]] = (), access_token: str | None = None
    ) -> dict[str, Any]:
        """The earlier library's name for :meth:`find_ticket`."""
        return self.find_ticket(list(resources), access_token)

    def find_ticket(
        self, resources: list[Mapping[str, Any]], pat_access_token: str | None = None
    ) -> dict[str, Any]:
        """Create a permission ticket for ``resources`` (the earlier ``find_ticket``).

        ``resources`` is a list of ``{"resource_id": ..., "resource_scopes": [...]}``.
        Returns Keycloak's answer, ``{"ticket": "..."}``; the client keeps the ticket for
        the earlier :meth:`rpt` (the last one only: concurrent callers pass ``ticket=``).
        """
        token = pat_access_token or self.pat().access_token
        url = self.discovery.endpoint("permission_endpoint", uma=True)
        response = self.http.request(
            "POST",
            url,
            json=[dict(r) for r in resources],
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            expected=(200, 201),
        )
        body = _json_object(response, "permission")
        if not isinstance(body.get("ticket"), str):
            raise KeycloakError("the permission endpoint answered without a ticket")
        self._ticket = body["ticket"]
        return body

    def rpt(self, access_token: str, *, ticket: str | None = None) -> TokenSet:
        """A requesting party token for the user of ``access_token`` and a permission ticket.

        ``ticket`` defaults to the last one this client obtained (the earlier behaviour).
        For more of the UMA grant see :class:`kc_core.uma.AuthzClient`.

        Raises:
            LoginError: no ticket given and none obtained before.
            AccessDenied: the policies refuse.
        """
        ticket = ticket or self._ticket
        if ticket is None:
            raise LoginError("rpt() needs a permission ticket: call ticket() first")
        from .uma import AuthzClient  # uma builds on this module

        return AuthzClient(self).rpt(access_token, ticket=ticket)

    @property
    def resources(self) -> list[str]:
        """The ids of the resource server's resources (with its PAT)."""
        return self.find_resources()

    def find_resources(self, access_token: str | None = None) -> list[str]:
        """The ids of the resource server's resources, with ``access_token`` or the PAT."""
        body = self._protection_get(None, access_token)
        if not isinstance(body, list):
            raise KeycloakError("the resource registration answer is not a JSON list")
        return [str(i) for i in body]

    def find_resource(self, resource_id: str, access_token: str | None = None) -> dict[str, Any]:
        """One resource's description (``name``, ``uris``, ``resource_scopes``, ...)."""
        body = self._protection_get(resource_id, access_token)
        if not isinstance(body, dict):
            raise KeycloakError("the resource registration answer is not a JSON object")
        return body

    def _protection_get(self, resource_id: str | None, access_token: str | None) -> Any:
        url = self.discovery.endpoint("resource_registration_endpoint", uma=True)
        if resource_id is not None:
            url = f"{url}/{quote(resource_id, safe='')}"
        token = access_token or self.pat().access_token
        response = self.http.request(
            "GET", url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        try:
            return response.json()
        except ValueError as exc:
            raise KeycloakError("the resource registration answer is not JSON") from exc

    # -- roles ------------------------------------------------------------------------------

    def has_role(self, claims: Mapping[str, Any], spec: str) -> bool:
        """Whether ``claims`` grant a role: ``realm:admin``, ``api:editor``, or this client's."""
        return has_role(claims, spec, client_id=self.config.client_id)

    # -- internals --------------------------------------------------------------------------

    def _token_set(
        self,
        body: Any,
        *,
        nonce: str | None = None,
        max_age: float | None = None,
        require_id_token: bool = False,
    ) -> TokenSet:
        received_at = time.time()
        if not isinstance(body, dict):
            raise KeycloakError("the token endpoint's answer is not a JSON object")
        id_token = body.get("id_token")
        id_claims = None
        if isinstance(id_token, str):
            id_claims = self.validate_id_token(
                id_token,
                nonce=nonce,
                access_token=body.get("access_token"),
                max_age=max_age,
            )
        elif require_id_token and "openid" in str(body.get("scope", "")).split():
            raise LoginError("the token endpoint returned no ID token for an openid login")
        return TokenSet.from_response(body, received_at=received_at, id_claims=id_claims)

    def _check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: the authorization response's ``iss`` is this realm's issuer."""
        if iss is None:
            if self.discovery.openid().get(_ISS_PARAMETER) is True:
                raise IssuerMismatch(
                    "the login answer carries no iss, though this server always sends it"
                )
            return
        if not secrets.compare_digest(iss.encode(), self.discovery.issuer.encode()):
            raise IssuerMismatch(f"the login answer comes from issuer {iss!r}, not this realm's")

    def _token_request(self, data: dict[str, str], *, timeout: float | None = None) -> Any:
        url = self.discovery.endpoint("token_endpoint")
        return self.post_authenticated(url, data, timeout=timeout)

    def post_authenticated(
        self,
        url: str,
        data: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        expected: tuple[int, ...] = (200,),
        timeout: float | None = None,
    ) -> Any:
        """POST a form to a Keycloak endpoint, authenticated as this client.

        Uses the configured ``client_auth_method``. ``data`` may be a list of pairs when a
        field repeats (UMA ``permission``). Returns the JSON answer (``None`` when empty).
        ``timeout`` bounds the call instead of the configured timeouts.
        """
        form = list(data.items()) if isinstance(data, Mapping) else list(data)
        auth = None
        method = self.config.client_auth_method
        client_id = self.config.client_id
        if method == "client_secret_basic" and self.config.client_secret is not None:
            # RFC 6749 2.3.1: form-encode both parts before Basic encoding.
            auth = (quote(client_id, safe=""), quote(self.config.client_secret, safe=""))
        elif method == "client_secret_post":
            form += [("client_id", client_id), ("client_secret", self.config.client_secret or "")]
        elif method == "private_key_jwt":
            form += [
                ("client_id", client_id),
                ("client_assertion_type", _ASSERTION_TYPE),
                ("client_assertion", self._client_assertion()),
            ]
        else:
            form.append(("client_id", client_id))
        return self.http.post_form(url, form, auth=auth, expected=expected, timeout=timeout)

    def _client_assertion(self) -> str:
        """A short-lived JWT signed with the client's key (RFC 7523 ``private_key_jwt``)."""
        now = int(time.time())
        header = {"alg": self.config.private_key_algorithm, "typ": "JWT"}
        if self.config.private_key_id:
            header["kid"] = self.config.private_key_id
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": self.discovery.issuer,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 60,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        algorithm = jwa.JWASignature.from_json(self.config.private_key_algorithm)
        signature = algorithm.sign(self._signing_key, signing_input.encode("ascii"))
        return f"{signing_input}.{_b64url(signature)}"


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise KeycloakError(f"the {what} answer is not JSON") from exc
    if not isinstance(body, dict):
        raise KeycloakError(f"the {what} answer is not a JSON object")
    return body


def _unverified_claims(token: str) -> Mapping[str, Any]:
    """A JWT's payload, unchecked: only for choosing what to check it against next."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _scope(scopes: Iterable[str]) -> str:
    return " ".join(dict.fromkeys(scopes))
