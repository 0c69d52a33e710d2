"""Key loading, static key sets, and the refetch rate limiter of RemoteKeySet (run against a
tiny local HTTP server that counts requests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kc_core import Config, TokenValidator
from kc_core.errors import KeycloakError, KeycloakUnreachable, UnknownKey
from kc_core.http import HttpClient
from kc_core.jwks import MIN_AGE, REFETCH_BURST, RemoteKeySet, StaticKeySet, load_jwk

from .conftest import (
    API_AUDIENCE,
    ISSUER,
    NOW,
    Clock,
    LocalServer,
    Reply,
    SigningKey,
    TokenMinter,
    b64url,
)

JWKS_PATH = "/realms/shop/protocol/openid-connect/certs"


@pytest.fixture
def rsa_jwk(signing_keys: dict[str, SigningKey]) -> dict[str, Any]:
    return signing_keys["rsa"].public_jwk()


@pytest.fixture
def ec_jwk(signing_keys: dict[str, SigningKey]) -> dict[str, Any]:
    return signing_keys["p384"].public_jwk()


# -- load_jwk -----------------------------------------------------------------------------


def test_load_jwk_loads_rsa_key_with_its_kid_and_alg(
    signing_keys: dict[str, SigningKey],
) -> None:
    key = load_jwk(signing_keys["rsa-rs256"].public_jwk())

    assert key is not None
    assert (key.kid, key.kty, key.alg, key.crv) == ("rsa-rs256", "RSA", "RS256", None)
    assert isinstance(key.key, rsa.RSAPublicKey)
    expected = signing_keys["rsa-rs256"].private.public_key()
    assert isinstance(expected, rsa.RSAPublicKey)
    assert key.key.public_numbers() == expected.public_numbers()


def test_load_jwk_loads_ec_key_with_its_curve(ec_jwk: dict[str, Any]) -> None:
    key = load_jwk(ec_jwk)

    assert key is not None
    assert (key.kty, key.crv) == ("EC", "P-384")
    assert isinstance(key.key, ec.EllipticCurvePublicKey)


def test_load_jwk_loads_ed25519_key(signing_keys: dict[str, SigningKey]) -> None:
    key = load_jwk(signing_keys["ed25519"].public_jwk())

    assert key is not None
    assert (key.kty, key.crv) == ("OKP", "Ed25519")
    assert isinstance(key.key, ed25519.Ed25519PublicKey)


def test_load_jwk_skips_encryption_keys(rsa_jwk: dict[str, Any]) -> None:
    assert load_jwk(rsa_jwk | {"use": "enc"}) is None


def test_load_jwk_skips_symmetric_keys() -> None:
    assert load_jwk({"kty": "oct", "kid": "hmac", "k": b64url(b"secret")}) is None


def test_load_jwk_refuses_private_key_material(signing_keys: dict[str, SigningKey]) -> None:
    private = signing_keys["rsa"].private
    assert isinstance(private, rsa.RSAPrivateKey)
    d = private.private_numbers().d
    jwk = signing_keys["rsa"].public_jwk() | {"d": b64url(d.to_bytes(256, "big"))}

    with pytest.raises(KeycloakError, match="private key"):
        load_jwk(jwk)


# -- StaticKeySet -------------------------------------------------------------------------


def test_static_key_set_finds_key_by_kid(rsa_jwk: dict[str, Any], ec_jwk: dict[str, Any]) -> None:
    keys = StaticKeySet({"keys": [rsa_jwk, ec_jwk]})

    assert keys.get("rsa").kty == "RSA"
    assert keys.get("p384").kty == "EC"
    with pytest.raises(UnknownKey):
        keys.get("missing")


def test_static_key_set_ignores_encryption_and_unloadable_keys(rsa_jwk: dict[str, Any]) -> None:
    keys = StaticKeySet(
        {
            "keys": [
                rsa_jwk | {"kid": "enc", "use": "enc"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                "not-a-jwk",
                rsa_jwk,
            ]
        }
    )

    assert keys.get("rsa").kid == "rsa"
    for kid in ("enc", "broken"):
        with pytest.raises(UnknownKey):
            keys.get(kid)


def test_token_without_kid_uses_the_only_signing_key(rsa_jwk: dict[str, Any]) -> None:
    # The encryption key does not count: the only *signing* key is unambiguous.
    keys = StaticKeySet({"keys": [rsa_jwk, rsa_jwk | {"kid": "enc", "use": "enc"}]})

    assert keys.get(None).kid == "rsa"


def test_token_without_kid_is_refused_when_several_keys_could_match(
    rsa_jwk: dict[str, Any], ec_jwk: dict[str, Any]
) -> None:
    keys = StaticKeySet({"keys": [rsa_jwk, ec_jwk]})

    with pytest.raises(UnknownKey):
        keys.get(None)


def test_kidless_key_is_found_by_token_without_kid_only(rsa_jwk: dict[str, Any]) -> None:
    kidless = {k: v for k, v in rsa_jwk.items() if k != "kid"}
    keys = StaticKeySet({"keys": [kidless]})

    assert keys.get(None).kid is None
    with pytest.raises(UnknownKey):
        keys.get("rsa")


def test_static_key_set_refuses_a_document_without_keys() -> None:
    with pytest.raises(KeycloakError):
        StaticKeySet({"jwks": []})


# -- RemoteKeySet -------------------------------------------------------------------------


@pytest.fixture
def http(local_server: LocalServer, make_config: Callable[..., Config]) -> Iterator[HttpClient]:
    client = HttpClient(make_config(local_server.url))
    yield client
    client.close()


@pytest.fixture
def make_key_set(
    http: HttpClient, local_server: LocalServer, clock: Clock
) -> Callable[..., RemoteKeySet]:
    def make(**options: Any) -> RemoteKeySet:
        options.setdefault("refetch_interval", 10.0)
        return RemoteKeySet(http, local_server.url + JWKS_PATH, clock=clock, **options)

    return make


def jwks_of(signing_keys: dict[str, SigningKey], *kids: str) -> dict[str, Any]:
    return {"keys": [signing_keys[kid].public_jwk() for kid in kids]}


def test_remote_key_set_fetches_lazily(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
) -> None:
    local_server.answer(JWKS_PATH, Reply(jwks_of(signing_keys, "rsa")))
    keys = make_key_set()
    assert local_server.count() == 0

    assert keys.get("rsa").kid == "rsa"
    assert keys.get("rsa").kid == "rsa"
    assert local_server.count(JWKS_PATH) == 1


def test_unknown_kid_triggers_exactly_one_refetch(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(
        JWKS_PATH,
        Reply(jwks_of(signing_keys, "rsa")),
        Reply(jwks_of(signing_keys, "rsa", "p256")),
    )
    keys = make_key_set()
    keys.get("rsa")
    clock.advance(10)

    assert keys.get("p256").kid == "p256"
    assert keys.get("p256").kid == "p256"
    assert local_server.count(JWKS_PATH) == 2


def test_kid_still_unknown_after_refetch_raises_unknown_key(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(JWKS_PATH, Reply(jwks_of(signing_keys, "rsa")))
    keys = make_key_set()
    keys.get("rsa")
    clock.advance(10)

    with pytest.raises(UnknownKey):
        keys.get("forged")
    assert local_server.count(JWKS_PATH) == 2


def test_unknown_kids_refetch_at_most_a_burst_per_interval_and_each_kid_once(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(JWKS_PATH, Reply(jwks_of(signing_keys, "rsa")))
    keys = make_key_set()
    keys.get("rsa")
    clock.advance(10)
    with pytest.raises(UnknownKey):
        keys.get("forged-1")
    with pytest.raises(UnknownKey):
        keys.get("forged-1")  # a kid a refetch did not find is not looked for again
    assert local_server.count(JWKS_PATH) == 2

    for n in range(2, REFETCH_BURST + 5):
        with pytest.raises(UnknownKey):
            keys.get(f"forged-{n}")
    assert local_server.count(JWKS_PATH) == 1 + REFETCH_BURST
    assert keys.get("rsa").kid == "rsa"  # known keys keep working without requests
    assert local_server.count(JWKS_PATH) == 1 + REFETCH_BURST
    clock.advance(10)
    with pytest.raises(UnknownKey):
        keys.get("forged-1")
    assert local_server.count(JWKS_PATH) == 2 + REFETCH_BURST


def test_a_key_published_right_after_a_forged_kid_is_found(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(
        JWKS_PATH,
        Reply(jwks_of(signing_keys, "rsa")),
        Reply(jwks_of(signing_keys, "rsa")),
        Reply(jwks_of(signing_keys, "rsa", "p256")),
    )
    keys = make_key_set()
    keys.get("rsa")
    with pytest.raises(UnknownKey):
        keys.get("forged")  # garbage with a random kid, right after the first fetch

    assert keys.get("p256").kid == "p256"  # a key Keycloak published just now
    assert local_server.count(JWKS_PATH) == 3


def test_the_key_set_is_refetched_in_the_background_once_older_than_its_max_age(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(
        JWKS_PATH, Reply(jwks_of(signing_keys, "rsa", "p256")), Reply(jwks_of(signing_keys, "rsa"))
    )
    keys = make_key_set(max_age=60)
    keys.get("p256")
    clock.advance(59)
    assert keys.published("p256")
    assert local_server.count(JWKS_PATH) == 1

    clock.advance(1)
    assert keys.get("p256").kid == "p256"  # served from the cache while the refetch runs
    deadline = time.monotonic() + 5
    while keys.published("p256"):
        assert time.monotonic() < deadline, "the removed key is still trusted"
        time.sleep(0.01)
    assert local_server.count(JWKS_PATH) == 2
    with pytest.raises(UnknownKey):
        keys.get("p256")


def test_cache_control_max_age_is_honoured_within_bounds(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    jwks = jwks_of(signing_keys, "rsa")
    local_server.answer(
        JWKS_PATH,
        Reply(jwks, headers={"Cache-Control": "public, max-age=30"}),
        Reply(jwks, headers={"Cache-Control": "max-age=1"}),
        Reply(jwks, headers={"Cache-Control": "max-age=99999"}),
        Reply(jwks),
    )
    keys = make_key_set(max_age=120)
    keys.get("rsa")
    for expected_age in (30, MIN_AGE, 120):
        before = local_server.count(JWKS_PATH)
        clock.advance(expected_age - 0.5)
        keys.get("rsa")
        time.sleep(0.05)
        assert local_server.count(JWKS_PATH) == before, f"refetched before {expected_age} s"
        clock.advance(0.5)
        keys.get("rsa")
        deadline = time.monotonic() + 5
        while local_server.count(JWKS_PATH) == before:
            assert time.monotonic() < deadline, f"no refetch after {expected_age} s"
            time.sleep(0.01)


def test_concurrent_requests_for_a_new_kid_cause_one_fetch(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(
        JWKS_PATH,
        Reply(jwks_of(signing_keys, "rsa")),
        Reply(jwks_of(signing_keys, "rsa", "p256"), delay=0.2),
    )
    keys = make_key_set()
    keys.get("rsa")
    clock.advance(10)
    threads_count = 20
    barrier = threading.Barrier(threads_count)
    found: list[str | None] = []
    failures: list[BaseException] = []

    def ask() -> None:
        barrier.wait()
        try:
            found.append(keys.get("p256").kid)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert failures == []
    assert found == ["p256"] * threads_count
    assert local_server.count(JWKS_PATH) == 2


def test_refresh_fetches_regardless_of_interval(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
) -> None:
    local_server.answer(
        JWKS_PATH,
        Reply(jwks_of(signing_keys, "rsa")),
        Reply(jwks_of(signing_keys, "p256")),
    )
    keys = make_key_set()
    keys.get("rsa")

    keys.refresh()

    assert keys.get("p256").kid == "p256"
    assert local_server.count(JWKS_PATH) == 2


def test_unreachable_server_on_first_fetch_raises_keycloak_unreachable(
    closed_port_url: str, make_config: Callable[..., Config], clock: Clock
) -> None:
    keys = RemoteKeySet(
        HttpClient(make_config(closed_port_url)), closed_port_url + JWKS_PATH, clock=clock
    )

    with pytest.raises(KeycloakUnreachable):
        keys.get("rsa")
    # Within the interval the same failure is reported without hammering the server.
    with pytest.raises(KeycloakUnreachable):
        keys.get("rsa")
    assert keys.fetch_count == 1


def test_error_answer_on_first_fetch_is_not_taken_for_an_empty_key_set(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    clock: Clock,
) -> None:
    local_server.answer(
        JWKS_PATH,
        Reply({"error": "unknown_error"}, status=500),
        Reply(jwks_of(signing_keys, "rsa")),
    )
    keys = make_key_set()
    with pytest.raises(KeycloakError) as caught:
        keys.get("rsa")
    assert not isinstance(caught.value, UnknownKey)

    clock.advance(10)

    assert keys.get("rsa").kid == "rsa"


def test_validates_offline_only_what_needs_no_key_fetch(
    local_server: LocalServer,
    make_key_set: Callable[..., RemoteKeySet],
    signing_keys: dict[str, SigningKey],
    minter: TokenMinter,
) -> None:
    local_server.answer(JWKS_PATH, Reply(jwks_of(signing_keys, "rsa")))
    keys = make_key_set()
    validator = TokenValidator(keys, issuer=ISSUER, audience=API_AUDIENCE, clock=lambda: NOW)
    token = minter.mint()
    assert not validator.validates_offline(token)  # the key set is still to fetch
    validator.validate(token)
    fetches = keys.fetch_count
    assert validator.validates_offline(minter.mint(minter.access_claims(jti="another")))
    assert validator.validates_offline("not-a-token")  # refused before any key is looked up
    unsigned = b64url(b'{"alg":"none"}') + "." + token.split(".")[1] + "."
    assert validator.validates_offline(unsigned)  # alg none: refused from its header
    assert not validator.validates_offline(minter.mint(key="p256"))  # an unknown kid: a fetch
    assert keys.fetch_count == fetches  # asking fetched nothing
    assert StaticKeySet(jwks_of(signing_keys, "rsa")).loaded("any kid")  # never fetches
