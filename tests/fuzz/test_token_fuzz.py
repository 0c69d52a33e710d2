"""TokenValidator.validate on hostile tokens: every failure is a TokenError, nothing forged
passes, and the refusal's text is ASCII that repeats nothing of the token.

A seeded mutation run (``KC_FUZZ_TOKENS`` tokens) and Hypothesis properties (``KC_FUZZ_EXAMPLES``
examples each) over locally signed tokens; ``./dev fuzz`` runs both with large counts.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from hostile_input import (
    CLIENT_ID,
    EXAMPLES,
    RSA_KID,
    SEED,
    TOKENS,
    LocalRealm,
    TokenMutator,
    b64url,
    nested_json,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kc_core import TokenValidator
from kc_core.errors import MalformedToken, TokenError

PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture(scope="module")
def validator(local_realm: LocalRealm) -> TokenValidator:
    return TokenValidator(local_realm.jwks(), issuer=local_realm.issuer, audience=CLIENT_ID)


def refusal_of(validator: TokenValidator, token: Any, **kwargs: Any) -> TokenError | None:
    """The TokenError refusing ``token``, or ``None`` when it is accepted."""
    try:
        validator.validate(token, **kwargs)
    except TokenError as exc:
        return exc
    return None


def assert_clean_text(error: TokenError) -> None:
    text = str(error)
    assert text.isascii(), ascii(text)
    assert text.isprintable(), ascii(text)


def test_mutated_tokens_raise_only_token_errors_and_no_forgery_passes(
    validator: TokenValidator, local_realm: LocalRealm
) -> None:
    mutator = TokenMutator(local_realm, random.Random(SEED))
    others: list[str] = []
    forged: list[str] = []
    unclean: list[str] = []
    refused: dict[str, int] = {}
    started = time.perf_counter()
    for _ in range(TOKENS):
        token, kind, nonce, access_token = mutator.next()
        try:
            validator.validate(token, kind=kind, nonce=nonce, access_token=access_token)  # type: ignore[arg-type]
        except TokenError as exc:
            refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1
            if not (str(exc).isascii() and str(exc).isprintable()):
                unclean.append(ascii(str(exc)))
            continue
        except Exception as exc:
            others.append(f"{type(exc).__name__}: {token[:200]!a} as {kind}")
            continue
        if local_realm.is_forgery(token):
            forged.append(ascii(token[:200]))
    elapsed = time.perf_counter() - started
    print(f"\nfuzz tokens: {TOKENS} in {elapsed:.1f} s; refused {sorted(refused.items())}; "
          f"accepted {TOKENS - sum(refused.values()) - len(others)}; "
          f"other exceptions {len(others)}; forged accepted {len(forged)}; "
          f"non-ASCII refusals {len(unclean)}")  # fmt: skip
    assert not others, others[:10]
    assert not unclean, unclean[:10]
    assert not forged, forged[:10]


def test_a_deeply_nested_header_is_a_malformed_token(validator: TokenValidator) -> None:
    rng = random.Random(1)
    for depth in (33, 1000, 100_000):
        header = b64url(('{"alg":"RS256","x":' + nested_json(depth, rng) + "}").encode())
        error = refusal_of(validator, f"{header}.e30.AA")
        assert isinstance(error, MalformedToken), depth


def test_deep_nesting_inside_signed_claims_is_a_malformed_token(
    validator: TokenValidator, local_realm: LocalRealm
) -> None:
    claims = (
        json.dumps(local_realm.claims()).encode()[:-1]
        + b', "x": '
        + b"[" * 2000
        + b"]" * 2000
        + b"}"
    )
    token = local_realm.sign_raw(b'{"alg":"RS256","kid":"' + RSA_KID.encode() + b'"}', claims)
    assert isinstance(refusal_of(validator, token), MalformedToken)


def test_brackets_inside_strings_do_not_count_as_nesting(
    validator: TokenValidator, local_realm: LocalRealm
) -> None:
    token = local_realm.sign(local_realm.claims(note='[{"\\"' * 500, roles=[[["a"]]]))
    assert refusal_of(validator, token) is None


@pytest.mark.parametrize("kid", ["日本", "\ud800", '"\r\nX: 1', "é" * 50])
def test_unknown_kid_of_any_text_is_refused_in_ascii_without_echo(
    validator: TokenValidator, kid: str
) -> None:
    header = b64url(json.dumps({"alg": "RS256", "kid": kid}).encode())
    error = refusal_of(validator, f"{header}.e30.AA")
    assert error is not None
    assert_clean_text(error)
    assert kid not in str(error)
    assert ascii(kid)[1:-1] not in str(error)


@pytest.mark.parametrize("alg", ["日本", "HS256", "none", "RS256\u0000"])
def test_refused_alg_is_named_in_ascii_without_echo(validator: TokenValidator, alg: str) -> None:
    header = b64url(json.dumps({"alg": alg, "kid": RSA_KID}).encode())
    error = refusal_of(validator, f"{header}.e30.AA")
    assert error is not None
    assert_clean_text(error)
    assert alg == "none" or alg not in str(error)


def test_a_megabyte_token_is_refused_before_any_parsing(
    local_realm: LocalRealm, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kc_core.tokens as tokens

    validator = TokenValidator(local_realm.jwks(), issuer=local_realm.issuer, audience=CLIENT_ID)
    token = local_realm.sign(local_realm.claims(pad="x" * 1_000_000))
    parsed: list[str] = []
    real_decode = tokens._decode_part
    monkeypatch.setattr(
        tokens, "_decode_part", lambda part: parsed.append(part) or real_decode(part)
    )
    error = refusal_of(validator, token)
    assert isinstance(error, MalformedToken)
    assert "longer than" in str(error)
    assert parsed == [], "nothing of an oversized token is decoded"


def test_max_token_size_is_configurable(local_realm: LocalRealm) -> None:
    token = local_realm.sign(local_realm.claims())
    small = TokenValidator(
        local_realm.jwks(), issuer=local_realm.issuer, audience=CLIENT_ID, max_token_size=100
    )
    assert isinstance(refusal_of(small, token), MalformedToken)
    roomy = TokenValidator(
        local_realm.jwks(), issuer=local_realm.issuer, audience=CLIENT_ID,
        max_token_size=len(token),
    )  # fmt: skip
    assert refusal_of(roomy, token) is None
    with pytest.raises(ValueError, match="max_token_size"):
        TokenValidator(local_realm.jwks(), issuer=local_realm.issuer, max_token_size=0)


def test_a_lone_surrogate_nonce_is_a_nonce_mismatch(
    local_realm: LocalRealm, validator: TokenValidator
) -> None:
    validator = TokenValidator(local_realm.jwks(), issuer=local_realm.issuer, client_id=CLIENT_ID)
    token = local_realm.sign(local_realm.claims("id", nonce="\ud800"))
    assert refusal_of(validator, token, kind="id", nonce="\ud800") is None
    error = refusal_of(validator, token, kind="id", nonce="\udfff")
    assert type(error).__name__ == "NonceMismatch"


def test_non_ascii_at_hash_is_an_at_hash_mismatch(local_realm: LocalRealm) -> None:
    validator = TokenValidator(local_realm.jwks(), issuer=local_realm.issuer, client_id=CLIENT_ID)
    token = local_realm.sign(local_realm.claims("id", at_hash="日本"))
    error = refusal_of(validator, token, kind="id", nonce="n-0", access_token="x")
    assert type(error).__name__ == "AtHashMismatch"


def test_keycloak_unreachable_stays_a_keycloak_error(local_realm: LocalRealm) -> None:
    from kc_core.errors import KeycloakUnreachable

    class DownKeySource:
        def get(self, kid: str | None) -> Any:
            raise KeycloakUnreachable("no answer", url="http://127.0.0.1:9")

    validator = TokenValidator(DownKeySource(), issuer=local_realm.issuer)
    with pytest.raises(KeycloakUnreachable):
        validator.validate(local_realm.sign(local_realm.claims()))


# -- properties ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@PROPERTY
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_is_refused_with_a_token_error(validator: TokenValidator, text: str) -> None:
    error = refusal_of(validator, text)
    assert error is not None
    assert_clean_text(error)


@PROPERTY
@given(header=json_values, claims=json_values)
def test_any_json_in_an_unsigned_token_is_refused(
    validator: TokenValidator, header: Any, claims: Any
) -> None:
    token = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.AA"
    assert refusal_of(validator, token) is not None


@PROPERTY
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "exp",
                "iat",
                "nbf",
                "iss",
                "aud",
                "azp",
                "typ",
                "nonce",
                "sub",
                "events",
                "at_hash",
                "auth_time",
                "sid",
                "jti",
            ]
        ),
        json_values,
        max_size=4,
    ),
    kind=st.sampled_from(["access", "id", "logout", "userinfo"]),
    nonce=st.none() | st.text(max_size=4),
)
def test_any_signed_claims_are_accepted_or_refused_with_a_token_error(
    local_realm: LocalRealm, changes: dict[str, Any], kind: str, nonce: str | None
) -> None:
    validator = TokenValidator(
        local_realm.jwks(), issuer=local_realm.issuer, audience=CLIENT_ID, cache_size=0
    )
    token = local_realm.sign(local_realm.claims(kind if kind != "userinfo" else "access") | changes)
    error = refusal_of(validator, token, kind=kind, nonce=nonce, access_token="a")
    if error is not None:
        assert_clean_text(error)
