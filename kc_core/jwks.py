"""Signing keys: a JWKS parsed once into ready key objects, refetched when a kid is unknown
and once it is older than its maximum age."""

from __future__ import annotations

import base64
import logging
import math
import re
import threading
import time
import weakref
from collections import deque
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

#: Refetches for unknown ``kid`` s allowed per refetch interval (each new kid gets one, until
#: this many: random kids cost Keycloak one request per interval each, at most this many).
REFETCH_BURST = 10
#: A ``Cache-Control: max-age`` shorter than this is raised to it (seconds).
MIN_AGE = 10.0
_MISSING_LIMIT = 1024
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age=(\d+)")

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

    The set is kept at most ``max_age`` seconds (a ``Cache-Control: max-age`` from the
    server is honoured between :data:`MIN_AGE` and ``max_age``; Keycloak's own
    ``no-cache`` leaves ``max_age``). It is then refetched in the background (by a timer,
    and by the first use after that age) while the cached keys keep serving, so a key
    removed or disabled in the realm stops being trusted within about ``max_age``, by busy
    and idle processes alike, without any request waiting.

    An unknown ``kid`` triggers a refetch; at most :data:`REFETCH_BURST` refetches happen
    per ``refetch_interval`` seconds, a ``kid`` a refetch did not find is not looked for
    again for that long, and threads asking for a missing key while one fetch runs wait for
    that fetch instead of starting their own. Tokens with random ``kid`` s therefore cost
    Keycloak a few requests per interval at most, and one such token never keeps a key
    Keycloak has just published refused.
    """

    def __init__(
        self,
        http: HttpClient,
        jwks_uri: str | Callable[[], str],
        *,
        refetch_interval: float = 10.0,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._jwks_uri = jwks_uri
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, VerificationKey] = {}
        self._fetches: deque[float] = deque(maxlen=REFETCH_BURST)
        self._missing: dict[str | None, float] = {}  # kid -> when a refetch did not find it
        self._stale_at = math.inf  # when the keys need a refetch (no keys yet: never stale)
        self._revalidating = False
        self._fetch_serial = 0  # fetches started so far
        self._last_error: KeycloakError | None = None
        self._failed_at: float | None = None
        self._timer: threading.Timer | None = None
        #: How many times the key set was fetched (successfully or not).
        self.fetch_count = 0

    def get(self, kid: str | None) -> VerificationKey:
        key = _pick(self._keys, kid)
        if key is not None:
            if self._clock() >= self._stale_at:
                self._revalidate_in_background()
            return key
        return self._get_after_refetch(kid)

    def loaded(self, kid: str | None) -> bool:
        """Whether :meth:`get` answers ``kid`` from the keys held, without a fetch."""
        return _pick(self._keys, kid) is not None

    def published(self, kid: str | None) -> bool:
        """Whether ``kid`` is in the cached key set (never waits; may start a background
        refetch when the set is older than its maximum age)."""
        if self._clock() >= self._stale_at:
            self._revalidate_in_background()
        keys = self._keys  # _pick's rule, without its call: asked on every cached token
        return kid in keys or (kid is None and len(keys) == 1)

    def refresh(self) -> None:
        """Fetch the key set now, regardless of the rate limit."""
        with self._lock:
            self._fetch()

    def _get_after_refetch(self, kid: str | None) -> VerificationKey:
        fetches_before = self._fetch_serial
        with self._lock:
            key = _pick(self._keys, kid)
            if key is not None:
                return key
            if self._fetch_serial > fetches_before:
                # A fetch that began after this kid was asked for: its answer is final for now.
                raise UnknownKey(f"no key with kid {kid!r} in the realm's key set")
            now = self._clock()
            missed = self._missing.get(kid)
            if missed is not None and now - missed < self._refetch_interval:
                alerts.key_refetch_refused(kid)  # held back: logged once per interval
                raise UnknownKey(
                    f"no key with kid {kid!r} (not in the key set fetched {now - missed:.1f} s ago)"
                )
            failed_at = self._failed_at
            if failed_at is not None and now - failed_at < self._refetch_interval:
                # Keycloak just failed to answer: ask again only after an interval.
                if not self._keys and self._last_error is not None:
                    raise self._last_error
                raise UnknownKey(f"no key with kid {kid!r} (the key set could not be refetched)")
            if len(self._fetches) == REFETCH_BURST and (
                now - self._fetches[0] < self._refetch_interval
            ):
                alerts.key_refetch_refused(kid)
                raise UnknownKey(
                    f"no key with kid {kid!r} (key set refetched {REFETCH_BURST} times in the "
                    f"last {self._refetch_interval:g} s)"
                )
            self._fetch()
            key = _pick(self._keys, kid)
            if key is None:
                if len(self._missing) >= _MISSING_LIMIT:
                    self._missing.clear()
                self._missing[kid] = self._clock()
                raise UnknownKey(f"no key with kid {kid!r} in the realm's key set")
            return key

    def _revalidate_in_background(self) -> None:
        with self._lock:
            if self._revalidating:
                return
            self._revalidating = True
        threading.Thread(target=self._revalidate, name="kc-jwks-refresh", daemon=True).start()

    def _revalidate(self) -> None:
        try:
            with self._lock:
                if self._clock() >= self._stale_at:
                    self._fetch(for_unknown_kid=False)
        except KeycloakError as exc:
            # Keep the keys we have (Keycloak is down, not compromised); try again later.
            _log.warning("the realm's key set could not be refreshed: %s", exc)
            retry = min(self._refetch_interval, self._max_age)
            self._stale_at = self._clock() + retry
            self._schedule(retry)
        finally:
            self._revalidating = False

    def _schedule(self, delay: float) -> None:
        """Refetch after ``delay`` s even if no token asks: an idle process must not keep
        trusting a removed key until its next request."""
        if self._timer is not None:
            self._timer.cancel()
        owner = weakref.ref(self)  # a timer never keeps a discarded key set alive

        def fire() -> None:
            keys = owner()
            if keys is not None and not keys._revalidating:
                keys._revalidating = True
                keys._revalidate()

        self._timer = threading.Timer(delay, fire)
        self._timer.daemon = True
        self._timer.start()

    def _fetch(self, *, for_unknown_kid: bool = True) -> None:
        now = self._clock()
        self._fetch_serial += 1
        if for_unknown_kid:  # the periodic refetch does not use up the unknown-kid budget
            self._fetches.append(now)
        self.fetch_count += 1
        uri = self._jwks_uri if isinstance(self._jwks_uri, str) else self._jwks_uri()
        try:
            response = self._http.request("GET", uri, headers={"Accept": "application/json"})
            try:
                body = response.json()
            except ValueError as exc:
                raise KeycloakError("the realm's JWKS is not JSON") from exc
            if not isinstance(body, dict):
                raise KeycloakError("the realm's JWKS is not a JSON object")
            keys = _load_jwks(body)
        except KeycloakError as exc:
            self._last_error = exc
            metrics.record("kc_jwks_fetches_total", result="failed")
            self._failed_at = now
            raise
        metrics.record("kc_jwks_fetches_total", result="ok")
        self._last_error = None
        self._failed_at = None
        self._keys = keys
        self._missing = {k: t for k, t in self._missing.items() if k not in keys}
        age = self._age(response.headers.get("Cache-Control"))
        self._stale_at = now + age
        self._schedule(age)

    def _age(self, cache_control: str | None) -> float:
        """How long a fetched set is kept: the server's max-age within bounds, else max_age."""
        match = _MAX_AGE.search(cache_control or "")
        if match is None:
            return self._max_age
        return max(min(MIN_AGE, self._max_age), min(float(match[1]), self._max_age))
