"""Token validation cost against a bare ``cryptography`` RSA verify, measured in the same run.

Run: ``python benchmarks/bench_tokens.py`` (``--compare`` adds PyJWT and python-keycloak when
they are installed; they are not dependencies of kc).

The token is shaped like one Keycloak issues (RS256, about 2 KB of claims). Each timed call
gets its own copy of the token string, as a web request would, so string hashes are not
reused between iterations. The baseline verifies the same distinct tokens as the first-seen
row.
"""

from __future__ import annotations

import argparse
import base64
import inspect
import time
import uuid
from collections.abc import Callable
from typing import Any

from _support import (
    Target,
    call_loop,
    interleaved,
    new_rsa_key,
    public_jwk,
    report_targets,
    sign_rs256,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kc_core import TokenValidator

ISSUER = "http://127.0.0.1:8080/realms/bench"
BASELINE = "bare cryptography RSA verify of the token (baseline)"
FIRST_SEEN = "kc TokenValidator.validate, first-seen token"
SEEN_AGAIN = "kc TokenValidator.validate, token seen again"
CACHE_SIZE = 4096  # the default of Config.token_cache_size


def keycloak_like_claims(now: int) -> dict[str, object]:
    """Claims of the size and shape of a Keycloak access token with roles and groups."""
    return {
        "exp": now + 300, "iat": now, "auth_time": now, "jti": str(uuid.uuid4()),
        "iss": ISSUER, "aud": ["kc-api", "account"], "sub": str(uuid.uuid4()),
        "typ": "Bearer", "azp": "kc-web", "sid": str(uuid.uuid4()), "acr": "1",
        "allowed-origins": ["http://localhost:8000"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "user", "admin"]
                         + [f"team-{i}" for i in range(20)]},
        "resource_access": {
            "kc-api": {"roles": ["reader", "writer"]},
            "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]},
        },
        "scope": "openid profile email", "email_verified": True, "name": "Alice Liddell",
        "preferred_username": "alice", "given_name": "Alice", "family_name": "Liddell",
        "email": "alice@example.com",
        "groups": [f"/org/department-{i}/team-{i}" for i in range(12)],
    }  # fmt: skip


def make_token(key: rsa.RSAPrivateKey, kid: str, now: int) -> str:
    """A distinct token (its own ``jti``, ``sub``, ``sid``) with ``keycloak_like_claims``."""
    return sign_rs256(key, kid, keycloak_like_claims(now))


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=1500, help="calls per sample")
    parser.add_argument("--rounds", type=int, default=9, help="samples per row, interleaved")
    parser.add_argument("--cache-size", type=int, default=CACHE_SIZE, help="validator cache")
    parser.add_argument("--compare", action="store_true", help="also time PyJWT / python-keycloak")
    args = parser.parse_args(argv)
    key = new_rsa_key()
    public = key.public_key()
    jwk_json = public_jwk(public, "bench", use="sig", alg="RS256")
    now = int(time.time())
    token = make_token(key, "bench", now)

    def bare(candidate: str) -> None:
        # The least any verifier does with the token string: split off and decode the
        # signature, then one RSA verify over the signing input.
        head, _, encoded = candidate.rpartition(".")
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        public.verify(raw, head.encode(), padding.PKCS1v15(), hashes.SHA256())

    cached = TokenValidator({"keys": [jwk_json]}, issuer=ISSUER, audience="kc-api")
    cached.validate(token)
    # First-seen: every call gets a token never validated before (distinct jti and
    # signature), on a validator whose cache is on and already full, so each call pays the
    # miss, the insert and an eviction: the steady state of a busy service.
    fresh = TokenValidator(
        {"keys": [jwk_json]}, issuer=ISSUER, audience="kc-api", cache_size=args.cache_size
    )
    for _ in range(args.cache_size):
        fresh.validate(make_token(key, "bench", now))
    distinct = [make_token(key, "bench", now) for _ in range(args.number * (args.rounds + 1))]
    rows = {
        # The same distinct tokens as the first-seen row: one token verified again and
        # again would hash bytes already in the CPU's cache.
        BASELINE: call_loop(bare, _received(distinct), args.number),
        FIRST_SEEN: call_loop(fresh.validate, _received(distinct), args.number),
        SEEN_AGAIN: call_loop(cached.validate, _received([token]), args.number),
    }
    if args.compare:
        _compare(rows, token, public, jwk_json, args)
    results = interleaved(rows, args.rounds)
    print(f"token: {len(token)} bytes, RS256, 2048-bit key")
    print(f"{'case':<52} {'µs/call':>9} {'x baseline':>11}")
    for name, micros in results.items():
        print(f"{name:<52} {micros:>9.2f} {micros / results[BASELINE]:>11.3f}")
    print()
    return report_targets(
        results, [Target(FIRST_SEEN, 1.8, BASELINE), Target(SEEN_AGAIN, 0.15, BASELINE)]
    )


def _received(items: list[str]) -> Callable[[int], str]:
    """Call ``i`` gets a new copy of ``items[i % len(items)]``, made just before its sample as
    a request decodes its header into a new string (its hash not yet computed)."""
    return lambda i: items[i % len(items)].encode().decode()


def _compare(
    rows: dict[str, Callable[[], float]],
    token: str,
    public: rsa.RSAPublicKey,
    jwk_json: dict[str, str],
    args: argparse.Namespace,
) -> None:
    """Time PyJWT and python-keycloak on the same token, each given a ready key object and
    asked for the same checks as kc (signature, exp, iss, aud)."""
    try:
        import jwt  # PyJWT
    except ImportError:
        print("PyJWT not installed: skipped")
    else:

        def pyjwt_decode(candidate: str = token) -> object:
            return jwt.decode(
                candidate, public, algorithms=["RS256"], audience="kc-api", issuer=ISSUER
            )

        _check_it_verifies(pyjwt_decode, token)
        rows["PyJWT jwt.decode (key object given)"] = call_loop(
            pyjwt_decode, lambda i: token, args.number
        )
    try:
        from keycloak import KeycloakOpenID
    except ImportError:
        print("python-keycloak not installed: skipped")
    else:
        # The server is never contacted: the key is handed over, so no certs are fetched.
        openid = KeycloakOpenID(
            server_url="http://127.0.0.1:1", realm_name="bench", client_id="kc-api"
        )
        keycloak_decode = _python_keycloak_decoder(openid, public, jwk_json)
        _check_it_verifies(keycloak_decode, token)
        rows["python-keycloak KeycloakOpenID.decode_token"] = call_loop(
            keycloak_decode, lambda i: token, max(1, args.number // 4)
        )


def _python_keycloak_decoder(
    openid: Any, public: rsa.RSAPublicKey, jwk_json: dict[str, str]
) -> Callable[[str], object]:
    """``decode_token`` as the installed python-keycloak offers it.

    Before 3.0 it took ``(token, key, algorithms, **python_jose_options)`` with a PEM key;
    from 3.0 on it is ``(token, validate=True, **kwargs)`` on jwcrypto, ``key`` a jwcrypto JWK
    and the remaining keywords passed to ``jwcrypto.jwt.JWT`` (``check_claims``).
    """
    parameters = inspect.signature(openid.decode_token).parameters
    if "key" in parameters:
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

        def jose_decode(candidate: str) -> object:
            return openid.decode_token(candidate, pem, algorithms=["RS256"], issuer=ISSUER)

        return jose_decode

    from jwcrypto import jwk as jwcrypto_jwk

    key = jwcrypto_jwk.JWK(**jwk_json)
    check_claims = {"iss": ISSUER, "aud": "kc-api", "exp": None}

    def jwcrypto_decode(candidate: str) -> object:
        return openid.decode_token(candidate, key=key, check_claims=check_claims)

    return jwcrypto_decode


def _check_it_verifies(decode: Callable[[str], object], token: str) -> None:
    """A comparison only counts if the library really checks the signature."""
    claims = decode(token)
    assert isinstance(claims, dict)
    assert claims["iss"] == ISSUER
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    try:
        decode(forged)
    except Exception:  # each library has its own error type
        return
    raise AssertionError(f"{decode.__qualname__} accepted a forged signature")


if __name__ == "__main__":
    main()
