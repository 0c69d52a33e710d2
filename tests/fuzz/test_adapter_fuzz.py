"""Every adapter under hostile requests: no 5xx, and every 401 carries a printable-ASCII,
parseable ``WWW-Authenticate``.

Each app runs around an engine of the local realm (served by a stand-in for discovery and
the JWKS) and is driven through its framework's own test client or its WSGI call, with
``KC_FUZZ_REQUESTS`` mutated requests: bearer tokens, ``/kc/login?next=``, callback query
parameters, back-channel logout bodies, logout origins, cookies, Accept headers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator

import pytest
from adapter_apps import ADAPTERS, SENDERS, close_apps
from hostile_input import (
    REQUESTS,
    SEED,
    HostileRequest,
    LocalRealm,
    RequestMutator,
    Tally,
    TokenMutator,
    challenge_problem,
    check_answer,
)

from kc_core import Config
from kc_core.engine import Engine
from kc_core.stores.cookie import CookieTokenStore

#: Adapters whose engine keeps tokens in encrypted cookies (the others: the framework session).
COOKIE_MODE = frozenset({"flask", "pyramid"})


def make_engine(adapter: str, config: Config) -> Engine:
    store = (
        CookieTokenStore(secret="fuzz-cookie-secret-0123456789") if adapter in COOKIE_MODE else None
    )
    engine = Engine(config, store=store)
    engine.client.warm_up()  # discovery and keys now: the stand-in is never needed again
    return engine


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    # Refusals are logged at INFO; a 500's traceback still reaches the failure list.
    caplog.set_level(logging.CRITICAL)
    yield
    close_apps()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_hostile_requests_never_get_a_5xx(
    adapter: str, realm_config: Config, local_realm: LocalRealm
) -> None:
    send = SENDERS[adapter](make_engine(adapter, realm_config))
    rng = random.Random(SEED + ADAPTERS.index(adapter))
    mutator = RequestMutator(TokenMutator(local_realm, rng), rng)
    tally = Tally()
    started = time.perf_counter()
    for _ in range(REQUESTS):
        request = mutator.next()
        try:
            status, headers = send(request)
        except Exception as exc:
            tally.runs += 1
            tally.fail(f"{type(exc).__name__}: {ascii(str(exc))[:200]} for {request.describe()}")
            continue
        check_answer(tally, request, status, headers)
    elapsed = time.perf_counter() - started
    print(f"\nfuzz {adapter}: {tally.summary()} in {elapsed:.1f} s")
    assert tally.failure_count == 0, "\n".join(tally.failures)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    "header",
    ['{"alg":"RS256","x":' + "[" * 1000 + "]" * 1000 + "}", '{"alg":"RS256","kid":"日本"}'],
)
def test_nested_or_unicode_jose_headers_get_a_401_with_a_challenge(
    adapter: str, header: str, realm_config: Config
) -> None:
    from hostile_input import b64url

    send = SENDERS[adapter](make_engine(adapter, realm_config))
    token = f"{b64url(header.encode())}.e30.AA"
    for path in ("/api/data", "/private", "/"):
        status, headers = send(
            HostileRequest(
                "GET",
                path,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        )
        if path == "/":
            assert status < 500
            continue
        assert status == 401, (path, status)
        assert (
            challenge_problem(dict((k.lower(), v) for k, v in headers).get("www-authenticate"))
            is None
        )
    status, _ = send(
        HostileRequest(
            "POST",
            "/kc/backchannel-logout",
            body=f"logout_token={token}".encode(),
            content_type="application/x-www-form-urlencoded",
        )
    )
    assert status == 400
