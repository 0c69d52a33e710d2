"""Signing keys: a JWKS parsed once into ready key objects, refetched when a kid is unknown."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from josepy import errors as jose_errors
from josepy import jwk as jose_jwk

from . import alerts, metrics
from .errors import KeycloakError, UnknownKey
from .http import HttpClient

__all__ = ["KeySource", "RemoteKeySet", "StaticKeySet", "VerificationKey", "load_jwk"]

_log = logging.getLogger(__name__)

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key from a JWKS, loaded once.

    ``kty`` is the JWK key type (``RSA``, ``EC``, ``OKP``), ``crv`` its curve when it has
    one, and ``alg`` the algorithm the key itself is restricted to, if the JWK names one.
    """

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    key: PublicKey


class KeySource(Protocol):
    """Where a :class:`~kc_core.TokenValidator` finds the key for a ``kid``."""

    def get(self, kid: str | None) -> VerificationKey:
        """The key named ``kid``; raise :class:`~kc_core.errors.UnknownKey` if there is none."""
        ...


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def load_jwk(jwk: Mapping[str, Any]) -> VerificationKey | None:
    """Load one JWK into a :class:`VerificationKey`; ``None`` for keys that do not sign.

    Encryption keys (``use: enc``), symmetric keys and private keys are skipped: a verifier
    only ever holds public signing keys, so an HMAC secret can never be confused with one.
    """
    kty = jwk.get("kty")
    if jwk.get("use", "sig") != "sig":
        return None
    if "d" in jwk:
        raise KeycloakError("refusing a JWKS that contains private key material")
    kid = jwk.get("kid")
    alg = jwk.get("alg")
    key: PublicKey
    crv: str | None = None
    if kty in ("RSA", "EC"):
        loaded = jose_jwk.JWK.from_json(dict(jwk)).key  # type: ignore[attr-defined]
        # josepy wraps cryptography keys to make them comparable; keep the bare key.
        key = getattr(loaded, "_wrapped", loaded)
        if kty == "EC":
            crv = str(jwk.get("crv"))
    elif kty == "OKP":
        crv = str(jwk.get("crv"))
        raw = _b64(str(jwk["x"]))
        if crv == "Ed25519":
            key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        elif crv == "Ed448":
            key = ed448.Ed448PublicKey.from_public_bytes(raw)
        else:
            return None
    else:
        return None
    return VerificationKey(
        kid=None if kid is None else str(kid),
        kty=str(kty),
        crv=crv,
        alg=None if alg is None else str(alg),
        key=key,
    )


def _load_jwks(jwks: Mapping[str, Any]) -> dict[str | None, VerificationKey]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise KeycloakError("a JWKS must be an object with a 'keys' list")
    loaded: dict[str | None, VerificationKey] = {}
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        try:
            key = load_jwk(jwk)
        except (KeyError, TypeError, ValueError, jose_errors.Error) as exc:
            _log.warning("skipping a JWK that cannot be loaded (kid=%s): %s", jwk.get("kid"), exc)
            continue
        if key is not None:
            loaded[key.kid] = key
    return loaded


def _pick(keys: Mapping[str | None, VerificationKey], kid: str | None) -> VerificationKey | None:
    key = keys.get(kid)
    if key is None and kid is None and len(keys) == 1:
        # A token without kid is only matched when the choice is unambiguous.
        return next(iter(keys.values()))
    return key


class StaticKeySet:
    """Keys from a JWKS given up front (no network)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = _load_jwks(jwks)

    def get(self, kid: str | None) -> VerificationKey:
        key = _pick(self._keys, kid)
        if key is None:
            raise UnknownKey(f"no key with kid {kid!r}")
        return key

    def loaded(self, kid: str | None) -> bool:
        """Whether :meth:`get` answers ``kid`` without I/O: always (nothing is fetched)."""
        return True


class RemoteKeySet:
    """Keys from Keycloak's ``jwks_uri``, loaded on first use and kept as key objects.

    An unknown ``kid`` triggers one refetch; refetches happen at most once per
    ``refetch_interval`` seconds, and threads asking for the same missing key while one
    fetch runs wait for that fetch instead of starting their own.
    """

    def __init__(
        self,
        http: HttpClient,
        jwks_uri: str | Callable[[], str],
        *,
        refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._jwks_uri = jwks_uri
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, VerificationKey] = {}
        self._attempted_at: float | None = None
        self._generation = 0
        self._last_error: KeycloakError | None = None
        #: How many times the key set was fetched (successfully or not).
        self.fetch_count = 0

    def get(self, kid: str | None) -> VerificationKey:
        key = _pick(self._keys, kid)
        if key is not None:
            return key
        return self._get_after_refetch(kid)

    def loaded(self, kid: str | None) -> bool:
        """Whether :meth:`get` answers ``kid`` from the keys held, without a fetch."""
        return _pick(self._keys, kid) is not None

    def refresh(self) -> None:
        """Fetch the key set now, regardless of the rate limit."""
        with self._lock:
            self._fetch()

    def _get_after_refetch(self, kid: str | None) -> VerificationKey:
        generation = self._generation
        with self._lock:
            key = _pick(self._keys, kid)
            if key is not None:
                return key
            if self._generation != generation:
                # Another thread fetched while this one waited: its answer is final for now.
                raise UnknownKey(f"no key with kid {kid!r} in the realm's key set")
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._refetch_interval:
                if not self._keys and self._last_error is not None:
                    raise self._last_error
                alerts.key_refetch_refused(kid)
                raise UnknownKey(
                    f"no key with kid {kid!r} (key set refetched less than "
                    f"{self._refetch_interval:g} s ago)"
                )
            self._fetch()
            key = _pick(self._keys, kid)
            if key is None:
                raise UnknownKey(f"no key with kid {kid!r} in the realm's key set")
            return key

    def _fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetch_count += 1
        uri = self._jwks_uri if isinstance(self._jwks_uri, str) else self._jwks_uri()
        try:
            body = self._http.get_json(uri)
            if not isinstance(body, dict):
                raise KeycloakError("the realm's JWKS is not a JSON object")
            keys = _load_jwks(body)
        except KeycloakError as exc:
            self._last_error = exc
            metrics.record("kc_jwks_fetches_total", result="failed")
            raise
        metrics.record("kc_jwks_fetches_total", result="ok")
        self._last_error = None
        self._keys = keys
        self._generation += 1
