"""TokenValidator against locally minted tokens: every rejection reason, every algorithm,
the validated-token cache and the header cache."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization

from kc_core import TokenValidator
from kc_core.errors import (
    AtHashMismatch,
    BadSignature,
    DisallowedAlgorithm,
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
from kc_core.jwks import StaticKeySet, VerificationKey

from .conftest import (
    API_AUDIENCE,
    ISSUER,
    LOGOUT_EVENT,
    WEB_CLIENT,
    Clock,
    TokenMinter,
    b64url,
    b64url_json,
)

MakeValidator = Callable[..., TokenValidator]
Build = Callable[[TokenMinter], Any]


# -- tampering helpers --------------------------------------------------------------------


def _parts(token: str) -> list[str]:
    return token.split(".")


def _with_signature(token: str, signature: bytes | str) -> str:
    header, claims, _ = _parts(token)
    encoded = signature if isinstance(signature, str) else b64url(signature)
    return f"{header}.{claims}.{encoded}"


def _signature(token: str) -> bytes:
    part = _parts(token)[2]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def flip_signature_byte(token: str) -> str:
    signature = bytearray(_signature(token))
    signature[len(signature) // 2] ^= 0x01
    return _with_signature(token, bytes(signature))


def truncate_signature(token: str) -> str:
    return _with_signature(token, _signature(token)[:-8])


def swap_claims(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = _parts(token)
    return f"{header}.{b64url_json(claims)}.{signature}"


def hmac_token(m: TokenMinter, secret: bytes) -> str:
    """The alg-confusion forgery: HS256 keyed with the realm's *public* RSA key bytes."""
    signing_input = f"{b64url_json(m.header('rsa', alg='HS256'))}.{b64url_json(m.access_claims())}"
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(signing_input.encode())
    return f"{signing_input}.{b64url(mac.finalize())}"


def public_pem(m: TokenMinter) -> bytes:
    return (
        m.keys["rsa"]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def public_der(m: TokenMinter) -> bytes:
    return (
        m.keys["rsa"]
        .private.public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def at_hash(access_token: str, hash_name: str) -> str:
    digest = hashlib.new(hash_name, access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


# -- hostile tokens -----------------------------------------------------------------------

ID = {"kind": "id", "nonce": "nonce-1"}
LOGOUT = {"kind": "logout"}


def hostile(
    name: str,
    build: Build,
    error: type[TokenError],
    validate: dict[str, Any] | None = None,
    validator: dict[str, Any] | None = None,
) -> Any:
    return pytest.param(build, error, validate or {}, validator or {}, id=name)


HOSTILE_TOKENS = [
    # malformed
    hostile("empty-string", lambda m: "", MalformedToken),
    hostile("two-parts", lambda m: ".".join(_parts(m.mint())[:2]), MalformedToken),
    hostile("four-parts", lambda m: m.mint() + ".", MalformedToken),
    hostile("one-part", lambda m: _parts(m.mint())[0], MalformedToken),
    hostile("bytes-not-str", lambda m: m.mint().encode(), MalformedToken),
    hostile("none-not-str", lambda m: None, MalformedToken),
    hostile("list-not-str", lambda m: _parts(m.mint()), MalformedToken),
    hostile("header-bad-base64", lambda m: m.compact("!!!", "e30", "AA"), MalformedToken),
    hostile(
        "header-impossible-length",
        lambda m: m.compact("abcde", *_parts(m.mint())[1:]),
        MalformedToken,
    ),
    hostile(
        "signature-with-plus",
        lambda m: _with_signature(m.mint(), "ab+c" + _parts(m.mint())[2][4:]),
        MalformedToken,
    ),
    hostile(
        "signature-with-slash",
        lambda m: _with_signature(m.mint(), "ab/c" + _parts(m.mint())[2][4:]),
        MalformedToken,
    ),
    hostile(
        "claims-with-slash-signed",
        lambda m: m.sign_parts(b64url_json(m.header()), "eyJ/" + b64url_json(m.access_claims())),
        MalformedToken,
    ),
    hostile(
        "signature-with-padding",
        lambda m: m.mint(m.access_claims(jti="ab")) + "==",
        MalformedToken,
    ),
    hostile(
        "non-ascii-claims-part",
        lambda m: m.compact(_parts(m.mint())[0], "eyJzdWIiOiJ4In0é", _parts(m.mint())[2]),
        MalformedToken,
    ),
    hostile(
        "header-not-json",
        lambda m: m.compact(b64url(b"{alg: RS256"), *_parts(m.mint())[1:]),
        MalformedToken,
    ),
    hostile(
        "header-json-array",
        lambda m: m.compact(b64url_json(["RS256"]), *_parts(m.mint())[1:]),
        MalformedToken,
    ),
    hostile(
        "header-not-utf8",
        lambda m: m.compact(b64url(b'{"alg":"\xff"}'), *_parts(m.mint())[1:]),
        MalformedToken,
    ),
    hostile(
        "claims-not-json-signed",
        lambda m: m.sign_parts(b64url_json(m.header()), b64url(b"sub=alice")),
        MalformedToken,
    ),
    hostile(
        "claims-json-string-signed",
        lambda m: m.sign_parts(b64url_json(m.header()), b64url_json("alice")),
        MalformedToken,
    ),
    hostile(
        "claims-json-array-signed",
        lambda m: m.sign_parts(b64url_json(m.header()), b64url_json([m.access_claims()])),
        MalformedToken,
    ),
    hostile(
        "header-without-alg",
        lambda m: m.mint(header=m.header(without=["alg"]), alg="RS256"),
        MalformedToken,
    ),
    hostile(
        "alg-json-null", lambda m: m.mint(header=m.header(alg=None), alg="RS256"), MalformedToken
    ),
    hostile("crit-header", lambda m: m.mint(header=m.header(crit=["exp"], exp=1)), MalformedToken),
    hostile("kid-is-a-number", lambda m: m.mint(header=m.header(kid=7)), MalformedToken),
    hostile("kid-is-a-list", lambda m: m.mint(header=m.header(kid=["rsa"])), MalformedToken),
    # disallowed algorithms
    hostile(
        "alg-none-unsigned",
        lambda m: m.compact(b64url_json({"alg": "none"}), b64url_json(m.access_claims()), ""),
        DisallowedAlgorithm,
    ),
    hostile(
        "alg-None-unsigned",
        lambda m: m.compact(b64url_json({"alg": "None"}), b64url_json(m.access_claims()), ""),
        DisallowedAlgorithm,
    ),
    hostile(
        "alg-NONE-with-kid",
        lambda m: m.compact(b64url_json(m.header(alg="NONE")), b64url_json(m.access_claims()), ""),
        DisallowedAlgorithm,
    ),
    hostile(
        "hs256-keyed-with-public-pem", lambda m: hmac_token(m, public_pem(m)), DisallowedAlgorithm
    ),
    hostile(
        "hs256-keyed-with-public-der", lambda m: hmac_token(m, public_der(m)), DisallowedAlgorithm
    ),
    hostile(
        "ps256-not-on-allow-list",
        lambda m: m.mint(header=m.header(alg="PS256")),
        DisallowedAlgorithm,
        validator={"algorithms": ["RS256"]},
    ),
    hostile(
        "es256-header-on-rsa-key",
        lambda m: m.compact(
            b64url_json(m.header("rsa", alg="ES256")), *_parts(m.mint(key="p256"))[1:]
        ),
        DisallowedAlgorithm,
    ),
    hostile(
        "eddsa-header-on-ec-key",
        lambda m: m.compact(
            b64url_json(m.header("p256", alg="EdDSA")), *_parts(m.mint(key="ed25519"))[1:]
        ),
        DisallowedAlgorithm,
    ),
    hostile(
        "rs256-header-on-ed25519-key",
        lambda m: m.compact(b64url_json(m.header("ed25519", alg="RS256")), *_parts(m.mint())[1:]),
        DisallowedAlgorithm,
    ),
    hostile(
        "es384-header-on-p256-key",
        lambda m: m.compact(
            b64url_json(m.header("p256", alg="ES384")), *_parts(m.mint(key="p384"))[1:]
        ),
        DisallowedAlgorithm,
    ),
    hostile(
        "rs512-for-rs256-restricted-key",
        lambda m: m.mint(key="rsa-rs256", header=m.header("rsa-rs256", alg="RS512")),
        DisallowedAlgorithm,
    ),
    # keys
    hostile("unknown-kid", lambda m: m.mint(header=m.header(kid="rotated-away")), UnknownKey),
    hostile("no-kid-several-keys", lambda m: m.mint(header=m.header(without=["kid"])), UnknownKey),
    # signatures
    hostile("flipped-byte-rs256", lambda m: flip_signature_byte(m.mint()), BadSignature),
    hostile(
        "flipped-byte-ps512",
        lambda m: flip_signature_byte(m.mint(header=m.header(alg="PS512"))),
        BadSignature,
    ),
    hostile("flipped-byte-es256", lambda m: flip_signature_byte(m.mint(key="p256")), BadSignature),
    hostile(
        "flipped-byte-eddsa", lambda m: flip_signature_byte(m.mint(key="ed25519")), BadSignature
    ),
    hostile(
        "signed-by-another-key",
        lambda m: m.mint(key="stranger", header=m.header("rsa")),
        BadSignature,
    ),
    hostile(
        "claims-swapped-after-signing",
        lambda m: swap_claims(m.mint(), m.access_claims(sub="admin")),
        BadSignature,
    ),
    hostile("truncated-rs256", lambda m: truncate_signature(m.mint()), BadSignature),
    hostile("truncated-es384", lambda m: truncate_signature(m.mint(key="p384")), BadSignature),
    hostile("truncated-eddsa", lambda m: truncate_signature(m.mint(key="ed25519")), BadSignature),
    hostile("empty-signature", lambda m: _with_signature(m.mint(), ""), BadSignature),
    # time
    hostile("expired", lambda m: m.mint(m.access_claims(exp=m.now - 3600)), TokenExpired),
    hostile(
        "expired-beyond-leeway", lambda m: m.mint(m.access_claims(exp=m.now - 11)), TokenExpired
    ),
    hostile("nbf-in-future", lambda m: m.mint(m.access_claims(nbf=m.now + 60)), TokenNotYetValid),
    hostile(
        "iat-in-future", lambda m: m.mint(m.access_claims(iat=m.now + 60)), TokenIssuedInFuture
    ),
    hostile("exp-missing", lambda m: m.mint(m.access_claims(without=["exp"])), MissingClaim),
    hostile(
        "exp-string", lambda m: m.mint(m.access_claims(exp=str(int(m.now) + 300))), MissingClaim
    ),
    hostile("exp-boolean", lambda m: m.mint(m.access_claims(exp=True)), MissingClaim),
    hostile("exp-null", lambda m: m.mint(m.access_claims(exp=None)), MissingClaim),
    hostile("exp-nan", lambda m: m.mint(m.access_claims(exp=float("nan"))), MissingClaim),
    hostile("exp-infinite", lambda m: m.mint(m.access_claims(exp=float("inf"))), MissingClaim),
    hostile("exp-beyond-float", lambda m: m.mint(m.access_claims(exp=10**400)), MissingClaim),
    hostile("nbf-string", lambda m: m.mint(m.access_claims(nbf="yesterday")), MissingClaim),
    hostile("iat-string", lambda m: m.mint(m.access_claims(iat="now")), MissingClaim),
    hostile("iat-beyond-float", lambda m: m.mint(m.access_claims(iat=10**400)), MissingClaim),
    hostile(
        "iat-beyond-safe-integers",
        lambda m: m.mint(m.access_claims(iat=2**60)),
        TokenIssuedInFuture,
    ),
    # issuer, audience, parties, type
    hostile(
        "wrong-issuer",
        lambda m: m.mint(m.access_claims(iss="https://evil.test/realms/shop")),
        WrongIssuer,
    ),
    hostile("issuer-missing", lambda m: m.mint(m.access_claims(without=["iss"])), WrongIssuer),
    hostile("issuer-is-a-list", lambda m: m.mint(m.access_claims(iss=[ISSUER])), WrongIssuer),
    hostile(
        "wrong-audience-string",
        lambda m: m.mint(m.access_claims(aud="billing-api", azp="rogue-client")),
        WrongAudience,
    ),
    hostile(
        "wrong-audience-list",
        lambda m: m.mint(m.access_claims(aud=["billing-api", "account"], azp="rogue-client")),
        WrongAudience,
    ),
    hostile(
        "audience-missing-other-client",
        lambda m: m.mint(m.access_claims(azp="rogue-client", without=["aud"])),
        WrongAudience,
    ),
    hostile(
        "audience-not-strings",
        lambda m: m.mint(m.access_claims(aud=[API_AUDIENCE, 1])),
        MissingClaim,
    ),
    hostile(
        "azp-not-authorized",
        lambda m: m.mint(m.access_claims(aud="account", azp="rogue-client")),
        WrongAudience,
        validator={"authorized_parties": [WEB_CLIENT, "orders-cli"]},
    ),
    hostile(
        "azp-is-a-list",
        lambda m: m.mint(m.access_claims(aud="account", azp=[WEB_CLIENT])),
        WrongAudience,
        validator={"authorized_parties": [WEB_CLIENT]},
    ),
    hostile(
        "azp-missing-when-required",
        lambda m: m.mint(m.access_claims(aud="account", without=["azp"])),
        WrongAudience,
        validator={"authorized_parties": [WEB_CLIENT]},
    ),
    hostile(
        "id-token-as-access-token",
        lambda m: m.mint(m.id_claims(aud=[API_AUDIENCE, WEB_CLIENT])),
        WrongTokenType,
    ),
    hostile(
        "refresh-token-as-access-token",
        lambda m: m.mint(m.access_claims(typ="Refresh")),
        WrongTokenType,
    ),
    hostile(
        "offline-token-as-access-token",
        lambda m: m.mint(m.access_claims(typ="Offline")),
        WrongTokenType,
    ),
    hostile(
        "logout-header-typ-as-access-token",
        lambda m: m.mint(header=m.header(typ="logout+jwt")),
        WrongTokenType,
    ),
    hostile("header-typ-not-a-string", lambda m: m.mint(header=m.header(typ=1)), WrongTokenType),
    # ID tokens
    hostile(
        "id-nonce-mismatch",
        lambda m: m.mint(m.id_claims(nonce="nonce-of-another-login")),
        NonceMismatch,
        ID,
    ),
    hostile(
        "id-nonce-missing", lambda m: m.mint(m.id_claims(without=["nonce"])), NonceMismatch, ID
    ),
    hostile(
        "id-azp-mismatch",
        lambda m: m.mint(m.id_claims(azp="rogue-client")),
        WrongAuthorizedParty,
        ID,
    ),
    hostile(
        "id-several-audiences-without-azp",
        lambda m: m.mint(m.id_claims(aud=[WEB_CLIENT, "rogue-client"], without=["azp"])),
        WrongAuthorizedParty,
        ID,
    ),
    hostile(
        "id-audience-is-another-client",
        lambda m: m.mint(m.id_claims(aud="rogue-client")),
        WrongAudience,
        ID,
    ),
    hostile(
        "id-at-hash-mismatch",
        lambda m: m.mint(m.id_claims(at_hash=at_hash("another-access-token", "sha256"))),
        AtHashMismatch,
        {**ID, "access_token": "the-access-token"},
    ),
    hostile(
        "id-at-hash-with-wrong-hash-for-es384",
        lambda m: m.mint(m.id_claims(at_hash=at_hash("the-access-token", "sha256")), key="p384"),
        AtHashMismatch,
        {**ID, "access_token": "the-access-token"},
    ),
    hostile(
        "id-max-age-exceeded",
        lambda m: m.mint(m.id_claims(auth_time=m.now - 3600)),
        TokenExpired,
        {**ID, "max_age": 600},
    ),
    hostile(
        "id-max-age-without-auth-time",
        lambda m: m.mint(m.id_claims(without=["auth_time"])),
        MissingClaim,
        {**ID, "max_age": 600},
    ),
    hostile("id-without-sub", lambda m: m.mint(m.id_claims(without=["sub"])), MissingClaim, ID),
    hostile("id-without-iat", lambda m: m.mint(m.id_claims(without=["iat"])), MissingClaim, ID),
    hostile(
        "access-token-as-id-token",
        lambda m: m.mint(m.access_claims(aud=WEB_CLIENT, nonce="nonce-1")),
        WrongTokenType,
        ID,
    ),
    hostile(
        "id-with-access-header-typ",
        lambda m: m.mint(m.id_claims(without=["typ"]), header=m.header(typ="at+jwt")),
        WrongTokenType,
        ID,
    ),
    # logout tokens
    hostile(
        "logout-without-events",
        lambda m: m.mint(m.logout_claims(without=["events"])),
        MissingClaim,
        LOGOUT,
    ),
    hostile(
        "logout-events-without-backchannel-event",
        lambda m: m.mint(m.logout_claims(events={"http://example.test/other-event": {}})),
        MissingClaim,
        LOGOUT,
    ),
    hostile(
        "logout-event-not-an-object",
        lambda m: m.mint(m.logout_claims(events={LOGOUT_EVENT: "yes"})),
        MissingClaim,
        LOGOUT,
    ),
    hostile(
        "logout-without-sid-and-sub",
        lambda m: m.mint(m.logout_claims(without=["sid", "sub"])),
        MissingClaim,
        LOGOUT,
    ),
    hostile(
        "logout-with-nonce",
        lambda m: m.mint(m.logout_claims(nonce="nonce-1")),
        WrongTokenType,
        LOGOUT,
    ),
    hostile(
        "logout-without-jti",
        lambda m: m.mint(m.logout_claims(without=["jti"])),
        MissingClaim,
        LOGOUT,
    ),
    hostile(
        "logout-with-access-header-typ",
        lambda m: m.mint(m.logout_claims(), header=m.header(typ="at+jwt")),
        WrongTokenType,
        LOGOUT,
    ),
    hostile(
        "id-token-as-logout-token",
        lambda m: m.mint(m.id_claims(without=["nonce"])),
        WrongTokenType,
        LOGOUT,
    ),
    hostile(
        "logout-for-another-client",
        lambda m: m.mint(m.logout_claims(aud="rogue-client")),
        WrongAudience,
        LOGOUT,
    ),
]


def test_hostile_token_catalogue_is_large_and_unique() -> None:
    names = [case.id for case in HOSTILE_TOKENS]
    assert len(names) == len(set(names))
    assert len(names) >= 30


@pytest.mark.parametrize(
    ("build", "error", "validate_options", "validator_options"), HOSTILE_TOKENS
)
def test_rejects_hostile_token_with_exact_reason(
    minter: TokenMinter,
    make_validator: MakeValidator,
    build: Build,
    error: type[TokenError],
    validate_options: dict[str, Any],
    validator_options: dict[str, Any],
) -> None:
    validator = make_validator(**validator_options)
    with pytest.raises(TokenError) as caught:
        validator.validate(build(minter), **validate_options)
    assert type(caught.value) is error


# -- accepted tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("RS256", "rsa"),
        ("RS384", "rsa"),
        ("RS512", "rsa"),
        ("PS256", "rsa"),
        ("PS384", "rsa"),
        ("PS512", "rsa"),
        ("ES256", "p256"),
        ("ES384", "p384"),
        ("ES512", "p521"),
        ("EdDSA", "ed25519"),
    ],
)
def test_accepts_token_signed_with_each_algorithm(
    minter: TokenMinter, validator: TokenValidator, alg: str, key: str
) -> None:
    token = minter.mint(key=key, header=minter.header(key, alg=alg))

    claims = validator.validate(token)

    assert claims["sub"] == "user-1"
    assert claims["iss"] == ISSUER


def test_accepts_token_expired_within_leeway(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    token = minter.mint(minter.access_claims(exp=minter.now - 9))

    assert validator.validate(token)["sub"] == "user-1"


def test_accepts_nbf_and_iat_in_future_within_leeway(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    token = minter.mint(minter.access_claims(nbf=minter.now + 9, iat=minter.now + 9))

    assert validator.validate(token)["sub"] == "user-1"


def test_accepts_any_of_several_issuers(minter: TokenMinter, make_validator: MakeValidator) -> None:
    internal = "http://keycloak:8080/realms/shop"
    validator = make_validator(issuer=[ISSUER, internal])

    assert validator.validate(minter.mint(minter.access_claims(iss=internal)))["iss"] == internal
    assert validator.validate(minter.mint())["iss"] == ISSUER
    assert validator.issuers == {ISSUER, internal}


def test_accepts_audience_given_as_string(minter: TokenMinter, validator: TokenValidator) -> None:
    token = minter.mint(minter.access_claims(aud=API_AUDIENCE))

    assert validator.validate(token)["aud"] == API_AUDIENCE


def test_skips_audience_check_when_validator_has_no_audience(
    minter: TokenMinter, make_validator: MakeValidator
) -> None:
    validator = make_validator(audience=None)

    assert validator.validate(minter.mint(minter.access_claims(aud="billing-api")))


def test_accepts_authorized_party_on_the_list(
    minter: TokenMinter, make_validator: MakeValidator
) -> None:
    validator = make_validator(authorized_parties=[WEB_CLIENT, "orders-cli"])

    assert validator.validate(minter.mint())["azp"] == WEB_CLIENT


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/at+jwt"])
def test_accepts_access_token_header_types(
    minter: TokenMinter, validator: TokenValidator, typ: str
) -> None:
    assert validator.validate(minter.mint(header=minter.header(typ=typ)))


def test_accepts_token_without_kid_when_the_key_set_has_one_key(
    minter: TokenMinter, make_validator: MakeValidator
) -> None:
    validator = make_validator(jwks={"keys": [minter.keys["p256"].public_jwk()]})
    token = minter.mint(key="p256", header=minter.header("p256", without=["kid"]))

    assert validator.validate(token)["sub"] == "user-1"


def test_validate_access_token_is_validate(minter: TokenMinter, validator: TokenValidator) -> None:
    assert validator.validate_access_token(minter.mint())["jti"] == "jti-access"


@pytest.mark.parametrize(("key", "hash_name"), [("rsa", "sha256"), ("p384", "sha384")])
def test_accepts_id_token_with_matching_nonce_and_at_hash(
    minter: TokenMinter, validator: TokenValidator, key: str, hash_name: str
) -> None:
    access_token = minter.mint()
    id_token = minter.mint(minter.id_claims(at_hash=at_hash(access_token, hash_name)), key=key)

    claims = validator.validate(
        id_token, kind="id", nonce="nonce-1", access_token=access_token, max_age=600
    )

    assert claims["sub"] == "user-1"


def test_accepts_id_token_with_several_audiences_and_azp(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    token = minter.mint(minter.id_claims(aud=[WEB_CLIENT, "orders-api"]))

    assert validator.validate(token, kind="id", nonce="nonce-1")["azp"] == WEB_CLIENT


@pytest.mark.parametrize("without", [["sub"], ["sid"]])
def test_accepts_logout_token_naming_sid_or_sub(
    minter: TokenMinter, validator: TokenValidator, without: list[str]
) -> None:
    token = minter.mint(minter.logout_claims(without=without))

    claims = validator.validate(token, kind="logout")

    assert LOGOUT_EVENT in claims["events"]


def test_accepts_logout_token_with_logout_header_type(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    token = minter.mint(minter.logout_claims(), header=minter.header(typ="logout+jwt"))

    assert validator.validate(token, kind="logout")["jti"] == "jti-logout"


def test_returned_claims_are_read_only(minter: TokenMinter, validator: TokenValidator) -> None:
    claims = validator.validate(minter.mint())

    with pytest.raises(TypeError):
        claims["sub"] = "admin"  # type: ignore[index]
    assert claims["sub"] == "user-1"


def test_refuses_validator_with_hmac_or_none_in_allow_list(realm_jwks: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="HS256"):
        TokenValidator(realm_jwks, issuer=ISSUER, algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError, match="none"):
        TokenValidator(realm_jwks, issuer=ISSUER, algorithms=["none"])


# -- caches -------------------------------------------------------------------------------


class CountingKeySource:
    """A key source that counts lookups: each one means a signature is about to be checked."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = StaticKeySet(jwks)
        self.lookups = 0

    def get(self, kid: str | None) -> VerificationKey:
        self.lookups += 1
        return self._keys.get(kid)


@pytest.fixture
def key_source(realm_jwks: dict[str, Any]) -> CountingKeySource:
    return CountingKeySource(realm_jwks)


def test_token_seen_again_is_not_verified_again(
    minter: TokenMinter, make_validator: MakeValidator, key_source: CountingKeySource
) -> None:
    validator = make_validator(jwks=key_source)
    token = minter.mint()

    first = validator.validate(token)
    second = validator.validate("".join(token))  # an equal string, not the same object

    assert key_source.lookups == 1
    assert second == first


def test_cached_token_past_expiry_raises_token_expired(
    minter: TokenMinter, make_validator: MakeValidator, key_source: CountingKeySource, clock: Clock
) -> None:
    validator = make_validator(jwks=key_source)
    token = minter.mint(minter.access_claims(exp=minter.now + 60))
    validator.validate(token)

    clock.advance(60 + 10)  # exactly at exp + leeway: still valid
    validator.validate(token)
    clock.advance(1)

    with pytest.raises(TokenExpired):
        validator.validate(token)
    assert key_source.lookups == 1


def test_cache_bound_evicts_the_oldest_token(
    minter: TokenMinter, make_validator: MakeValidator, key_source: CountingKeySource
) -> None:
    validator = make_validator(jwks=key_source, cache_size=2)
    oldest, middle, newest = (minter.mint(minter.access_claims(jti=f"t{i}")) for i in range(3))
    for token in (oldest, middle, newest):
        validator.validate(token)

    validator.validate(newest)
    validator.validate(middle)
    assert key_source.lookups == 3

    validator.validate(oldest)
    assert key_source.lookups == 4


def test_cache_size_zero_verifies_every_time(
    minter: TokenMinter, make_validator: MakeValidator, key_source: CountingKeySource
) -> None:
    validator = make_validator(jwks=key_source, cache_size=0)
    token = minter.mint()

    validator.validate(token)
    validator.validate(token)

    assert key_source.lookups == 2


def test_id_tokens_are_not_served_from_cache(
    minter: TokenMinter, make_validator: MakeValidator, key_source: CountingKeySource
) -> None:
    validator = make_validator(jwks=key_source)
    token = minter.mint(minter.id_claims())
    validator.validate(token, kind="id", nonce="nonce-1")

    with pytest.raises(NonceMismatch):
        validator.validate(token, kind="id", nonce="nonce-2")
    assert key_source.lookups == 2


def test_rejected_token_is_not_cached(
    minter: TokenMinter, make_validator: MakeValidator, key_source: CountingKeySource
) -> None:
    validator = make_validator(jwks=key_source)
    forged = flip_signature_byte(minter.mint())

    for _ in range(2):
        with pytest.raises(BadSignature):
            validator.validate(forged)
    assert key_source.lookups == 2


def test_forged_token_sharing_a_genuine_header_is_rejected(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    genuine = minter.mint()
    validator.validate(genuine)  # its header is now cached
    forged = swap_claims(genuine, minter.access_claims(sub="admin", jti="other"))

    with pytest.raises(BadSignature):
        validator.validate(forged)
    with pytest.raises(BadSignature):
        validator.validate(forged)
    assert validator.validate(minter.mint(minter.access_claims(jti="later")))["sub"] == "user-1"


def test_forged_headers_do_not_enter_the_header_cache(
    minter: TokenMinter, validator: TokenValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    original = TokenValidator._parse_header

    def counting_parse(self: TokenValidator, header_part: str) -> Any:
        parsed.append(header_part)
        return original(self, header_part)

    monkeypatch.setattr(TokenValidator, "_parse_header", counting_parse)
    # 100 forgeries, each with its own header, more than the header cache holds.
    for i in range(100):
        forged = minter.mint(key="stranger", header=minter.header("rsa", x=i))
        with pytest.raises(BadSignature):
            validator.validate(forged)
    forged_header = b64url_json(minter.header("rsa", x=0))
    with pytest.raises(BadSignature):
        validator.validate(minter.mint(key="stranger", header=minter.header("rsa", x=0)))
    assert parsed.count(forged_header) == 2

    # The genuine header still gets cached: parsed once for two different tokens.
    for jti in ("a", "b"):
        validator.validate(minter.mint(minter.access_claims(jti=jti)))
    assert parsed.count(b64url_json(minter.header("rsa"))) == 1


# -- the audience rule: aud names this app, or azp is this client or a trusted caller ------


def test_accepts_this_clients_own_token_whatever_its_audience(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    # Keycloak's default for a client without an audience mapper: aud "account", azp = client.
    claims = validator.validate(minter.mint(minter.access_claims(aud="account")))

    assert claims["azp"] == WEB_CLIENT


def test_accepts_this_clients_own_token_without_any_audience(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    # A user without roles gets no aud at all from Keycloak's defaults.
    assert validator.validate(minter.mint(minter.access_claims(without=["aud"])))


def test_accepts_a_token_of_an_authorized_party_without_audience(
    minter: TokenMinter, make_validator: MakeValidator
) -> None:
    validator = make_validator(authorized_parties=["orders-spa"])

    token = minter.mint(minter.access_claims(aud="account", azp="orders-spa"))

    assert validator.validate(token)["azp"] == "orders-spa"


def test_refuses_another_clients_token_naming_what_it_carried_and_the_fix(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    token = minter.mint(minter.access_claims(aud="account", azp="orders-spa"))

    with pytest.raises(WrongAudience) as caught:
        validator.validate(token)

    message = str(caught.value)
    assert message.isascii()
    assert "aud=['account']" in message
    assert "azp='orders-spa'" in message
    assert f"aud containing '{API_AUDIENCE}'" in message
    assert repr(WEB_CLIENT) in message
    assert "Audience mapper" in message
    assert "KEYCLOAK_AUTHORIZED_PARTIES=orders-spa" in message
    assert caught.value.audiences == ("account",)
    assert caught.value.azp == "orders-spa"


def test_audience_refusal_escapes_non_ascii_and_long_values(
    minter: TokenMinter, validator: TokenValidator
) -> None:
    token = minter.mint(minter.access_claims(aud=["\u65e5\u672c" * 50], azp="\ud800x"))

    with pytest.raises(WrongAudience) as caught:
        validator.validate(token)

    message = str(caught.value)
    assert message.isascii()
    assert len(message) < 800
    assert "CALLER" in message  # a non-ASCII azp is never put into the suggested fix


def test_audience_check_switched_off_accepts_every_client(
    minter: TokenMinter, make_validator: MakeValidator
) -> None:
    validator = make_validator(verify_audience=False)

    assert validator.validate(minter.mint(minter.access_claims(aud="x", azp="rogue-client")))


def test_audience_check_switched_off_still_checks_id_tokens(
    minter: TokenMinter, make_validator: MakeValidator
) -> None:
    validator = make_validator(verify_audience=False)

    with pytest.raises(WrongAudience):
        validator.validate(minter.mint(minter.id_claims(aud="rogue-client")), kind="id")
