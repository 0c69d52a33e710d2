"""JWT validation: signature over the exact bytes received, then every claim check.

The hot path avoids object (de)serialization of the whole JWS: the token is split once,
the header and claims are decoded with the standard library, and the signature is checked
with josepy's JWA over ``cryptography``, using a key object loaded once per key set.
A token that passed is remembered (keyed by its exact string, until its ``exp``), so a
token seen again costs one dictionary lookup and one clock read.

Hostile input is bounded before anything is parsed: a token longer than ``max_token_size``
is refused on its length, a JOSE header on its own (smaller) limit, and JSON nested deeper
than :data:`MAX_JSON_DEPTH` is refused before the decoder recurses into it (the same on every
Python version, whatever its own recursion limit). Whatever else
goes wrong inside validation ends as a :class:`~kc_core.errors.TokenError`, whose text is
ASCII and never repeats what the token says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from cryptography.exceptions import InvalidSignature
from josepy import jwa

from . import alerts, metrics
from .config import DEFAULT_ALGORITHMS
from .errors import (
    AtHashMismatch,
    BadSignature,
    DisallowedAlgorithm,
    KeycloakError,
    MalformedToken,
    MissingClaim,
    NonceMismatch,
    TokenError,
    TokenExpired,
    TokenIssuedInFuture,
    TokenNotYetValid,
    UnknownKey,
    WrongAudience,
    WrongAuthorizedParty,
    WrongIssuer,
    WrongTokenType,
)
from .jwks import KeySource, StaticKeySet

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "DEFAULT_MAX_TOKEN_SIZE",
    "MAX_JSON_DEPTH",
    "TokenKind",
    "TokenValidator",
]

TokenKind = Literal["access", "id", "logout", "userinfo"]
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

_PART = re.compile(r"[A-Za-z0-9_-]*")

#: The default longest token accepted, in characters: Keycloak's tokens are 1-4 KB, an RPT
#: with many permissions some tens of KB.
DEFAULT_MAX_TOKEN_SIZE = 64 * 1024
#: Longest base64url JOSE header: Keycloak's are under 200 characters (alg, typ, kid).
_MAX_HEADER_SIZE = 4096
#: Deepest JSON nesting accepted in a header or claims (Keycloak's claims nest 3 deep).
MAX_JSON_DEPTH = 32
# A JSON string (escapes included), to be skipped when counting brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def _verify_eddsa(key: Any, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class _Algorithm(NamedTuple):
    kty: str
    curves: frozenset[str] | None
    verify: Callable[[Any, bytes, bytes], bool]
    hash_name: str


def _jwa(alg: jwa.JWASignature) -> Callable[[Any, bytes, bytes], bool]:
    verify: Callable[[Any, bytes, bytes], bool] = alg.verify
    return verify


_ALGORITHMS: dict[str, _Algorithm] = {
    "RS256": _Algorithm("RSA", None, _jwa(jwa.RS256), "sha256"),
    "RS384": _Algorithm("RSA", None, _jwa(jwa.RS384), "sha384"),
    "RS512": _Algorithm("RSA", None, _jwa(jwa.RS512), "sha512"),
    "PS256": _Algorithm("RSA", None, _jwa(jwa.PS256), "sha256"),
    "PS384": _Algorithm("RSA", None, _jwa(jwa.PS384), "sha384"),
    "PS512": _Algorithm("RSA", None, _jwa(jwa.PS512), "sha512"),
    "ES256": _Algorithm("EC", frozenset({"P-256"}), _jwa(jwa.ES256), "sha256"),
    "ES384": _Algorithm("EC", frozenset({"P-384"}), _jwa(jwa.ES384), "sha384"),
    "ES512": _Algorithm("EC", frozenset({"P-521"}), _jwa(jwa.ES512), "sha512"),
    "EdDSA": _Algorithm("OKP", frozenset({"Ed25519", "Ed448"}), _verify_eddsa, "sha512"),
}
assert set(_ALGORITHMS) == set(DEFAULT_ALGORITHMS)

_HEADER_CACHE_SIZE = 64
_SAFE_INTEGER = 2**53  # exactly representable as a float: compares with the clock exactly
_ACCESS_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
_ID_HEADER_TYPES = frozenset({"jwt"})  # an at+jwt access token must never pass as an ID token
_LOGOUT_HEADER_TYPES = frozenset({"jwt", "logout+jwt", "application/logout+jwt"})
_HEADER_TYPES = {"id": _ID_HEADER_TYPES, "logout": _LOGOUT_HEADER_TYPES}
# Keycloak's own ``typ`` claim: Bearer (access), ID, Logout; refresh tokens say Refresh/Offline.
_CLAIM_TYPES: dict[str, str] = {
    "access": "bearer",
    "id": "id",
    "logout": "logout",
    "userinfo": "userinfo",
}


# "+", "/" and padding "=" are not base64url (RFC 7515): map them to an invalid byte.
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")


def _decode_part(part: str) -> bytes:
    try:
        if sys.version_info >= (3, 11):
            data = part.encode("ascii").translate(_URLSAFE_TO_STANDARD) + b"=="[: -len(part) % 4]
            return binascii.a2b_base64(data, strict_mode=True)
        if _PART.fullmatch(part) is None or len(part) % 4 == 1:
            raise ValueError("not base64url")
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("the token is not base64url-encoded") from exc


# The decoder's scanner, called directly: json.loads adds a Python-level layer per call.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _decode_json(part: str, what: str) -> dict[str, Any]:
    try:
        text = _decode_part(part).decode("utf-8")
        # Fewer brackets than the limit cannot nest deeper: the common case costs two counts.
        brackets = text.count("[") + text.count("{")
        if brackets > MAX_JSON_DEPTH and _json_depth(text) > MAX_JSON_DEPTH:
            raise MalformedToken(f"the token's {what} nests deeper than {MAX_JSON_DEPTH} levels")
        if text[:1] == "{":
            value, end = _scan_json(text, 0)
            if end != len(text):
                value = json.loads(text)  # trailing whitespace, or garbage: let json judge
        else:
            value = json.loads(text)
    except (ValueError, StopIteration, RecursionError) as exc:  # UnicodeDecodeError, ...
        raise MalformedToken(f"the token's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedToken(f"the token's {what} is not a JSON object")
    return value


def _numeric(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if type(value) is int and -_SAFE_INTEGER < value < _SAFE_INTEGER:
        return value  # what every issuer writes: an integer NumericDate
    if value is None:
        if required:
            raise MissingClaim(f"the token has no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MissingClaim(f"the token's {name!r} claim is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    # NaN never compares as expired and Infinity never expires: neither is a NumericDate.
    if not math.isfinite(number):
        raise MissingClaim(f"the token's {name!r} claim is not a finite number")
    return number


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        for each in aud:  # a loop, not all(...): no comprehension's frame per token
            if not isinstance(each, str):
                break
        else:
            return aud
    elif aud is None:
        return []
    raise MissingClaim("the token's 'aud' claim is neither a string nor a list of strings")


class TokenValidator:
    """Validates JWTs issued by one Keycloak realm.

    Args:
        jwks: a JWKS dict (static keys) or a key source such as
            :class:`~kc_core.jwks.RemoteKeySet` (keys fetched from Keycloak, refetched when a
            ``kid`` is unknown).
        issuer: the accepted ``iss``, or several (a realm reached under an internal and a
            public host name).
        audience: an access token is accepted when its ``aud`` contains this value.
        client_id: this client's id. An access token whose ``azp`` is this id (Keycloak
            issued it to this very client) is accepted whatever its ``aud`` says; ID and
            logout tokens must name it in ``aud`` (and in ``azp`` when present). Defaults
            to ``audience``.
        authorized_parties: other clients (``azp``) whose access tokens are accepted
            without naming ``audience`` in ``aud``.
        verify_audience: ``False`` accepts access tokens of every client of the realm
            (Keycloak's ``verify-token-audience: false``); ID and logout tokens are
            checked regardless. With neither ``audience``, ``client_id`` nor
            ``authorized_parties`` there is nothing to check against and the check is off.
        algorithms: the allow-list; only asymmetric algorithms exist here, so ``none`` and
            HMAC are never accepted.
        leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
        cache_size: how many validated access tokens are remembered (0 turns it off).
        max_token_size: the longest token accepted, in characters; longer ones are refused
            before any decoding (:data:`DEFAULT_MAX_TOKEN_SIZE`, 64 KiB).

    Every rejection raises a :class:`~kc_core.TokenError` subclass naming the reason, in
    ASCII text that never repeats the token's content; only the key source's own failures
    (Keycloak unreachable: a :class:`~kc_core.KeycloakError`) pass through as they are.

    Example::

        validator = TokenValidator(jwks, issuer="https://sso.example.com/realms/shop",
                                   audience="orders-api")
        claims = validator.validate(request_token)
    """

    def __init__(
        self,
        jwks: Mapping[str, Any] | KeySource,
        *,
        issuer: str | Iterable[str],
        audience: str | None = None,
        client_id: str | None = None,
        authorized_parties: Iterable[str] | None = None,
        verify_audience: bool = True,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 10.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
        max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
    ) -> None:
        self._keys: KeySource = StaticKeySet(jwks) if isinstance(jwks, Mapping) else jwks
        self._issuers = frozenset([issuer] if isinstance(issuer, str) else issuer)
        if not self._issuers:
            raise ValueError("at least one issuer is required")
        self._audience = audience
        self._client_id = client_id or audience
        # azp values accepted whatever aud says: this client's own tokens, and trusted callers.
        self._parties = frozenset(
            [*([self._client_id] if self._client_id else []), *(authorized_parties or ())]
        )
        self._verify_audience = verify_audience and bool(audience or self._parties)
        self._algorithms = frozenset(algorithms)
        unknown = self._algorithms - set(_ALGORITHMS)
        if unknown:
            raise ValueError(
                f"unsupported algorithms {sorted(unknown)}; allowed: {sorted(_ALGORITHMS)}"
            )
        self._leeway = leeway
        self._cache_size = cache_size
        self._clock = clock
        if max_token_size < 1:
            raise ValueError("max_token_size must be positive")
        self._max_token_size = max_token_size
        # Ordered: evicting the oldest entry is O(1) (a plain dict scans its tombstones).
        self._cache: OrderedDict[str, tuple[Mapping[str, Any], float, str | None]] = OrderedDict()
        # A key source that can say, without waiting, whether a kid is still published
        # (RemoteKeySet): a remembered token whose key left the realm is validated again.
        self._published: Callable[[str | None], bool] | None = getattr(
            self._keys, "published", None
        )
        self._cache_lock = threading.Lock()
        self._headers: dict[str, tuple[dict[str, Any], str | None, _Algorithm]] = {}

    @property
    def issuers(self) -> frozenset[str]:
        """The accepted issuers."""
        return self._issuers

    def validate(
        self,
        token: str,
        *,
        kind: TokenKind = "access",
        nonce: str | None = None,
        access_token: str | None = None,
        max_age: float | None = None,
    ) -> Mapping[str, Any]:
        """Check ``token`` and return its claims (a read-only mapping).

        Args:
            kind: ``"access"`` (the default), ``"id"``, ``"logout"`` (a back-channel
                ``logout_token``) or ``"userinfo"`` (a signed userinfo answer); each has its
                own ``typ`` and claim rules.
            nonce: for ID tokens, the nonce sent with the login; must match exactly.
            access_token: for ID tokens, the access token received with it; its ``at_hash``
                is checked when present.
            max_age: for ID tokens, the ``max_age`` sent with the login; ``auth_time`` must
                be recent enough.

        Raises:
            TokenError: a subclass naming why the token is rejected; any failure while
                parsing or checking hostile input is a :class:`~kc_core.MalformedToken`.
            KeycloakError: the key source cannot fetch the keys (Keycloak unreachable).
            ValueError: an ID or logout token, and the validator has no ``client_id``.
        """
        if not isinstance(token, str):
            raise MalformedToken("the token is not a string")
        if len(token) > self._max_token_size:
            raise MalformedToken(
                f"the token is longer than the {self._max_token_size} characters accepted"
            )
        if kind != "access" and self._client_id is None:
            raise ValueError("validating ID or logout tokens needs the validator's client_id")
        try:
            claims = self._validate(token, kind, nonce, access_token, max_age)
        except TokenError as exc:
            alerts.token_refused(kind, exc)
            raise
        except KeycloakError:
            raise  # the key source's (Keycloak unreachable: a 503, not a 401)
        except Exception as exc:
            # Hostile input must never escape as anything but a rejection of the token.
            refusal = MalformedToken("the token cannot be parsed or checked")
            alerts.token_refused(kind, refusal)
            raise refusal from exc
        metrics.record("kc_token_validations_total", kind=kind, result="accepted")
        return claims

    def _validate(
        self,
        token: str,
        kind: TokenKind,
        nonce: str | None,
        access_token: str | None,
        max_age: float | None,
    ) -> Mapping[str, Any]:
        if kind == "access":
            hit = self._cache.get(token)
            if hit is not None:
                if self._clock() > hit[1]:
                    with self._cache_lock:  # _remember iterates the dict under this lock
                        self._cache.pop(token, None)
                    raise TokenExpired("the token has expired")
                if self._published is None or self._published(hit[2]):
                    return hit[0]
                with self._cache_lock:
                    self._cache.pop(token, None)
        header, claims = self._verify_signature(token)
        expires = self._check_claims(header, claims, kind, nonce, access_token, max_age)
        result: Mapping[str, Any] = MappingProxyType(claims)
        if kind == "access" and self._cache_size > 0:
            kid = header.get("kid")
            self._remember(token, result, expires, None if kid is None else str(kid))
        return result

    def cached(self, token: str) -> Mapping[str, Any] | None:
        """The claims of an access token validated before and not expired, else ``None``.

        Never verifies and never touches the network: async callers use it to stay on the
        event loop when they can, and hand first-seen tokens to a worker thread.
        """
        if not isinstance(token, str) or len(token) > self._max_token_size:
            return None
        hit = self._cache.get(token)
        if hit is None or self._clock() > hit[1]:
            return None
        return hit[0] if self._published is None or self._published(hit[2]) else None

    def validates_offline(self, token: str) -> bool:
        """Whether :meth:`validate` judges ``token`` without I/O: its key is loaded, or the
        token is refused before any key is looked up (malformed, a refused ``alg``).

        Async callers validate such a token on their event loop; any other goes to a thread.
        """
        if not isinstance(token, str) or len(token) > self._max_token_size:
            return True
        header_part = token[: token.find(".")]  # not partition: no copy of the rest
        parsed = self._headers.get(header_part)
        if parsed is None:
            if token.count(".") != 2 or not token.isascii():
                return True
            try:
                parsed = self._parse_header(header_part)
            except Exception:
                return True  # refused from its header alone
        loaded = getattr(self._keys, "loaded", None)
        return loaded is not None and bool(loaded(parsed[1]))

    def validate_access_token(self, token: str) -> Mapping[str, Any]:
        """Same as ``validate(token)``: check an access token and return its claims."""
        return self.validate(token)

    def _remember(
        self, token: str, claims: Mapping[str, Any], expires: float, kid: str | None
    ) -> None:
        with self._cache_lock:
            while len(self._cache) >= self._cache_size:
                self._cache.popitem(last=False)
            self._cache[token] = (claims, expires + self._leeway, kid)

    def _verify_signature(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        signing_input, dot, signature_part = token.rpartition(".")
        header_part, second_dot, claims_part = signing_input.partition(".")
        # Exactly two dots: a membership test scans the middle part faster than a count.
        if not (dot and second_dot and token.isascii()) or "." in claims_part:
            raise MalformedToken("the token is not a compact JWS (three dot-separated parts)")
        # A realm signs every token with the same few headers: parse each one once.
        parsed = self._headers.get(header_part)
        header, kid, algorithm = parsed or self._parse_header(header_part)
        try:
            key = self._keys.get(kid)
        except UnknownKey as exc:
            # The key source may name the kid: never send the token's text back.
            raise UnknownKey("no key with the token's kid is in the realm's key set") from exc
        if key.kty != algorithm.kty or (
            algorithm.curves is not None and key.crv not in algorithm.curves
        ):
            raise DisallowedAlgorithm(f"the token's alg does not fit the {key.kty} key")
        if key.alg is not None and key.alg != header["alg"]:
            raise DisallowedAlgorithm("the token's key is restricted to another alg")
        signature = _decode_part(signature_part)
        if not algorithm.verify(key.key, signing_input.encode("ascii"), signature):
            raise BadSignature("the token's signature does not verify")
        if parsed is None and len(self._headers) < _HEADER_CACHE_SIZE:
            # Only headers of genuinely signed tokens are kept, so forgeries cannot fill it.
            self._headers[header_part] = (header, kid, algorithm)
        return header, _decode_json(claims_part, "claims")

    def _parse_header(self, header_part: str) -> tuple[dict[str, Any], str | None, _Algorithm]:
        if len(header_part) > _MAX_HEADER_SIZE:
            raise MalformedToken(f"the token's header is longer than {_MAX_HEADER_SIZE} characters")
        header = _decode_json(header_part, "header")
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise MalformedToken("the token's header has no 'alg'")
        if alg not in self._algorithms:
            if alg.lower() == "none":
                raise DisallowedAlgorithm(
                    "alg 'none' is refused: unsigned tokens are never accepted"
                )
            raise DisallowedAlgorithm("the token's alg is refused: not on the allow-list")
        if "crit" in header:
            raise MalformedToken("the token's header has critical extensions kc does not know")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise MalformedToken("the token's 'kid' is not a string")
        return header, kid, _ALGORITHMS[alg]

    def _check_claims(
        self,
        header: Mapping[str, Any],
        claims: dict[str, Any],
        kind: TokenKind,
        nonce: str | None,
        access_token: str | None,
        max_age: float | None,
    ) -> float:
        now = self._clock()
        leeway = self._leeway
        strict = kind in ("id", "logout")
        # Each time claim read as _numeric reads it; an integer in range (what every issuer
        # writes) without its call, as this runs for every first-seen token.
        exp: float | None = claims.get("exp")
        if type(exp) is not int or not -_SAFE_INTEGER < exp < _SAFE_INTEGER:
            # A signed userinfo answer is fresh by construction and need not carry exp.
            exp = _numeric(claims, "exp", required=kind != "userinfo")
        if exp is None:
            exp = now
        elif now > exp + leeway:
            raise TokenExpired("the token has expired")
        if "nbf" in claims:
            nbf = _numeric(claims, "nbf", required=False)
            if nbf is not None and nbf > now + leeway:
                raise TokenNotYetValid("the token is not valid yet (nbf)")
        iat: float | None = claims.get("iat")
        if type(iat) is not int or not -_SAFE_INTEGER < iat < _SAFE_INTEGER:
            iat = _numeric(claims, "iat", required=strict)
        if iat is not None and iat > now + leeway:
            raise TokenIssuedInFuture("the token was issued in the future (iat)")
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            raise WrongIssuer("the token's issuer is not accepted")
        self._check_type(header, claims, kind)
        if kind == "access":
            refusal = self.audience_refusal(claims)
            if refusal is not None:
                raise refusal
            return exp
        audiences = _audiences(claims)
        azp = claims.get("azp")
        client_id = self._client_id
        if client_id is None:
            raise ValueError("validating ID or logout tokens needs the validator's client_id")
        if client_id not in audiences:
            raise WrongAudience(f"the token is not meant for {client_id!r}")
        if azp is not None and azp != client_id:
            raise WrongAuthorizedParty(f"the token's azp is not {client_id!r}")
        if kind == "id":
            if len(audiences) > 1 and azp is None:
                raise WrongAuthorizedParty("an ID token with several audiences must carry azp")
            self._check_id_token(header, claims, nonce, access_token, max_age, now)
        elif kind == "logout":
            _check_logout_token(claims)
        return exp

    def audience_refusal(self, claims: Mapping[str, Any]) -> WrongAudience | None:
        """The refusal an access token with ``claims`` meets for its ``aud``/``azp``, with
        the console steps that fix it, or ``None`` when they admit it (no other check)."""
        audiences = _audiences(claims)
        azp = claims.get("azp")
        if not self._verify_audience or self._meant_for_us(audiences, azp):
            return None
        return WrongAudience(
            _audience_refusal(audiences, azp, self._audience, self._parties),
            audiences=audiences,
            azp=azp if isinstance(azp, str) else None,
        )

    def _meant_for_us(self, audiences: list[str], azp: Any) -> bool:
        if self._audience is not None and self._audience in audiences:
            return True
        return isinstance(azp, str) and azp in self._parties

    def _check_type(self, header: Mapping[str, Any], claims: Mapping[str, Any], kind: str) -> None:
        header_type = header.get("typ")
        allowed = _HEADER_TYPES.get(kind, _ACCESS_HEADER_TYPES)
        if header_type is not None and (
            not isinstance(header_type, str) or header_type.lower() not in allowed
        ):
            raise WrongTokenType(f"the token's header typ is not that of a {kind} token")
        claim_type = claims.get("typ")
        if claim_type is not None and (
            not isinstance(claim_type, str) or claim_type.lower() != _CLAIM_TYPES[kind]
        ):
            raise WrongTokenType(f"the token's typ is not that of a {kind} token")

    def _check_id_token(
        self,
        header: Mapping[str, Any],
        claims: Mapping[str, Any],
        nonce: str | None,
        access_token: str | None,
        max_age: float | None,
        now: float,
    ) -> None:
        if not isinstance(claims.get("sub"), str):
            raise MissingClaim("the ID token has no 'sub'")
        if nonce is not None:
            received = claims.get("nonce")
            # surrogatepass: JSON may escape a lone surrogate, which strict UTF-8 refuses.
            if not isinstance(received, str) or not hmac.compare_digest(
                received.encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
            ):
                raise NonceMismatch("the ID token's nonce is not the one sent at login")
        at_hash = claims.get("at_hash")
        if access_token is not None and at_hash is not None:
            hash_name = _ALGORITHMS[header["alg"]].hash_name
            digest = hashlib.new(hash_name, access_token.encode("utf-8", "surrogatepass")).digest()
            expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=")
            # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
            if not isinstance(at_hash, str) or not hmac.compare_digest(
                at_hash.encode("utf-8", "surrogatepass"), expected
            ):
                raise AtHashMismatch("the ID token's at_hash does not match the access token")
        if max_age is not None:
            auth_time = _numeric(claims, "auth_time", required=True)
            assert auth_time is not None
            if now > auth_time + max_age + self._leeway:
                raise TokenExpired("the authentication is older than max_age")


def _shown(value: object) -> str:
    """``value`` as ASCII for messages and headers: escaped, and cut when long."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _audience_refusal(
    audiences: list[str], azp: Any, audience: str | None, parties: frozenset[str]
) -> str:
    """Why an access token is not meant for this app: what it carried, what was expected,
    and how to fix it (ASCII only, no token content beyond ``aud`` and ``azp``)."""
    carried = f"aud={_shown(audiences[:5])} azp={_shown(azp)}"
    wanted = []
    if audience is not None:
        wanted.append(f"aud containing {_shown(audience)}")
    if parties:
        wanted.append(f"azp one of {_shown(sorted(parties)[:5])}")
    caller = azp if isinstance(azp, str) and azp.isascii() and len(azp) <= 80 else "CALLER"
    target = audience or (sorted(parties)[0] if parties else "THIS-CLIENT")
    return (
        f"the token is not meant for this app: it carries {carried}, kc expects "
        f"{' or '.join(wanted)}. Fix: in Keycloak add an Audience mapper to client {caller!r} "
        f"(Clients > {caller} > Client scopes > {caller}-dedicated > Configure a new mapper > "
        f"Audience, Included Client Audience: {target}), or accept that client with the "
        f"setting authorized_parties (KEYCLOAK_AUTHORIZED_PARTIES={caller})"
    )


def _check_logout_token(claims: Mapping[str, Any]) -> None:
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise MissingClaim("the logout token has no back-channel logout event")
    if not isinstance(claims.get("sid"), str) and not isinstance(claims.get("sub"), str):
        raise MissingClaim("the logout token names neither 'sid' nor 'sub'")
    if "nonce" in claims:
        raise WrongTokenType("a logout token must not carry a nonce")
    if not isinstance(claims.get("jti"), str):
        raise MissingClaim("the logout token has no 'jti'")
