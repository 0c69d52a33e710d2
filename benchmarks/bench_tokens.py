"""Token validation cost against a bare ``cryptography`` RSA verify, measured in the same run.

Run: ``python benchmarks/bench_tokens.py`` (``--compare`` adds PyJWT and python-keycloak when
they are installed; they are not dependencies of kc).

The token is shaped like one Keycloak issues (RS256, about 2 KB of claims). Each timed call
gets its own copy of the token string, as a web request would, so string hashes are not
reused between iterations.
"""

from __future__ import annotations

import argparse
import base64
import inspect
import time
import uuid
from collections.abc import Callable
from typing import Any

from _support import faster_half_median, new_rsa_key, per_call, public_jwk, sign_rs256
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kc_core import TokenValidator

ISSUER = "http://127.0.0.1:8080/realms/bench"
BASELINE = "bare cryptography RSA verify of the token (baseline)"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--compare", action="store_true", help="also time PyJWT / python-keycloak")
    args = parser.parse_args()

    key = new_rsa_key()
    public = key.public_key()
    jwk_json = public_jwk(public, "bench", use="sig", alg="RS256")
    now = int(time.time())
    token = make_token(key, "bench", now)
    copies = [token.encode().decode() for _ in range(args.number)]

    def bare() -> None:
        # The least any verifier does with the token string: split off and decode the
        # signature, then one RSA verify over the signing input.
        head, _, encoded = copies[0].rpartition(".")
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        public.verify(raw, head.encode(), padding.PKCS1v15(), hashes.SHA256())

    cached = TokenValidator({"keys": [jwk_json]}, issuer=ISSUER, audience="kc-api")
    cached.validate(token)
    # First-seen: every call gets a token never validated before (distinct jti and
    # signature), on a validator whose cache is on and already full, so each call pays the
    # miss, the insert and an eviction: the steady state of a busy service.
    distinct = [make_token(key, "bench", now) for _ in range(args.number)]
    filler = [make_token(key, "bench", now) for _ in range(CACHE_SIZE)]

    results: dict[str, float] = {}
    results[BASELINE] = per_call(bare, args.number, args.repeat)
    samples = []
    for _ in range(args.repeat):
        fresh = TokenValidator(
            {"keys": [jwk_json]}, issuer=ISSUER, audience="kc-api", cache_size=CACHE_SIZE
        )
        for each in filler:
            fresh.validate(each)
        start = time.perf_counter()
        for each in distinct:
            fresh.validate(each)
        samples.append((time.perf_counter() - start) / len(distinct))
    results["kc TokenValidator.validate, first-seen token"] = faster_half_median(
        samples, keep_middle=False
    )
    it = iter(copies * (args.repeat + 1))
    results["kc TokenValidator.validate, token seen again"] = per_call(
        lambda: cached.validate(next(it)), args.number, args.repeat
    )
    if args.compare:
        _compare(results, token, public, jwk_json, args)

    baseline = results[BASELINE]
    print(f"token: {len(token)} bytes, RS256, 2048-bit key")
    print(f"{'case':<52} {'µs/call':>9} {'x baseline':>11}")
    for name, seconds in results.items():
        print(f"{name:<52} {seconds * 1e6:>9.2f} {seconds / baseline:>11.3f}")


def _compare(
    results: dict[str, float],
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
        results["PyJWT jwt.decode (key object given)"] = per_call(
            pyjwt_decode, args.number, args.repeat
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
        results["python-keycloak KeycloakOpenID.decode_token"] = per_call(
            lambda: keycloak_decode(token), max(1, args.number // 4), args.repeat
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
