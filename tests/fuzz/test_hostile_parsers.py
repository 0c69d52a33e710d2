"""The parsers a request reaches before any login, fed hostile input: the encrypted-cookie
decoder, the framework session's ``kc`` and ``kc.logins`` entries, the callback's query,
``next`` (``safe_return_url``) and the ``WWW-Authenticate`` quoting. None may raise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import pytest
from hostile_input import CLIENT_ID, EXAMPLES, NASTY_TEXT, LocalRealm, challenge_problem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toy_adapter import ToyAdapter, ToyRequest

from kc_core import Config
from kc_core.engine import Engine, safe_return_url
from kc_core.engine.answers import _quote_header
from kc_core.plugins import Plugins, hookimpl
from kc_core.stores.cookie import CookieTokenStore

PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture(scope="module")
def engine(realm_config: Config) -> Engine:
    plugins = Plugins()
    plugins.register(ToyAdapter(ToyRequest), "toy")
    engine = Engine(realm_config, plugins=plugins)
    engine.client.warm_up()
    return engine


def answer(engine: Engine, path: str, **request: Any) -> Any:
    return engine.route(ToyRequest(url=f"http://app.test{path}", **request))


# -- cookies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head", ["².abc", "٣.abc", "9" * 5000 + ".x", "0.x", "99.x", "1.%%%", "1."]
)
def test_hostile_token_cookies_count_as_no_session(head: str) -> None:
    store = CookieTokenStore(secret="fuzz-cookie-secret-0123456789")
    assert store.decode({store.name: head, f"{store.name}.1": "x"}) is None


@PROPERTY
@given(st.dictionaries(st.sampled_from(["kc_tokens", "kc_tokens.1", "kc_tokens.2"]), st.text()))
def test_any_cookies_decode_to_nothing(cookies: dict[str, str]) -> None:
    assert CookieTokenStore(secret="fuzz-cookie-secret-0123456789").decode(cookies) is None


# -- the framework session ------------------------------------------------------------------

GARBAGE: list[Any] = [
    [1, 2], "abc", 5, ["ab"], {"s": "x"}, {"s": {"created_at": "x"}}, {"s": {"created_at": [1]}},
    {"s": {"created_at": float("nan")}}, {"s": {"created_at": 10**400}},
    {"s": {"created_at": True}}, {"s": {"nonce": "n", "redirect_uri": "/", "created_at": 10**400}},
]  # fmt: skip


@pytest.mark.parametrize("logins", GARBAGE, ids=range(len(GARBAGE)))
@pytest.mark.parametrize(
    "path", ["/kc/login", "/kc/callback?state=s&code=c", "/kc/callback?state=s&error=e"]
)
def test_garbage_pending_logins_in_the_session_never_raise(
    engine: Engine, logins: Any, path: str
) -> None:
    response = answer(engine, path, session={"kc.logins": logins})
    assert response.status in (302, 400, 401, 503)  # 503: the stand-in has no token endpoint


@pytest.mark.parametrize("kc", [[1], "x", {"key": 5}, {"key": "nope"}, {"key": "\ud800"}, None])
def test_garbage_session_pointers_count_as_no_session(engine: Engine, kc: Any) -> None:
    guard = engine.protect(ToyRequest(url="http://app.test/private", session={"kc": kc}))
    assert guard.response.status == 302


# -- the callback's query, with a real pending login ----------------------------------------


def pending_login() -> dict[str, Any]:
    return {"s": {"nonce": "n", "code_verifier": "v", "redirect_uri": "http://app.test/kc/callback",
                  "next": "/", "created_at": time.time(), "tenant": "default"}}  # fmt: skip


class RawQueryAdapter(ToyAdapter):
    """The toy adapter, answering a given query as is (lone surrogates and all)."""

    def __init__(self, query: dict[str, str]) -> None:
        super().__init__(ToyRequest)
        self.raw_query = query

    @hookimpl
    def kc_request_query(self, request: ToyRequest) -> Mapping[str, str]:
        return self.raw_query


@pytest.mark.parametrize("value", [t for t in NASTY_TEXT if len(t) < 100])
@pytest.mark.parametrize("name", ["error", "error_description", "iss", "code", "state"])
def test_hostile_callback_parameters_get_a_page_never_a_500(
    engine: Engine, name: str, value: str
) -> None:
    query = {"state": "s", "code": "c", "error": "access_denied", name: value}
    plugins = Plugins()
    plugins.register(RawQueryAdapter(query), "toy")
    local = Engine(engine.client, plugins=plugins)
    request = ToyRequest(url="http://app.test/kc/callback", session={"kc.logins": pending_login()})
    response = local.route(request)
    assert response.status in (400, 401, 503)


# -- next and the challenge -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/日本?x=é", "/%E6%97%A5%E6%9C%AC?x=%C3%A9"),
        ("/\ud800", None),
        ("/a\x7f", None),
        ("\uff0f\uff0fevil.example", None),
        ("//evil.example", None),
        ("/ok", "/ok"),
    ],
)
def test_safe_return_url_gives_ascii_or_nothing(target: str, expected: str | None) -> None:
    assert safe_return_url(target, "http://app.test/") == expected


@PROPERTY
@given(st.text())
def test_any_next_is_refused_or_an_ascii_local_path(target: str) -> None:
    safe = safe_return_url(target, "http://app.test/x")
    if safe is not None:
        assert safe.isascii()
        assert safe.isprintable()
        assert safe.startswith("/")
        assert not safe.startswith("//")


@PROPERTY
@given(st.text(), st.text())
def test_any_challenge_text_is_quoted_into_printable_ascii(realm: str, reason: str) -> None:
    challenge = (
        f'Bearer realm="{_quote_header(realm)}", error_description="{_quote_header(reason)}"'
    )
    assert challenge_problem(challenge) is None


def test_backchannel_logout_with_a_hostile_token_is_a_400_json(
    engine: Engine, local_realm: LocalRealm
) -> None:
    for token in ["x", "a.b.c", "\ud800.\ud800.\ud800", "eyJhbGciOiJSUzI1NiJ9." * 3]:
        response = answer(
            engine, "/kc/backchannel-logout", method="POST", form={"logout_token": token}
        )
        assert response.status == 400
        assert json.loads(response.body)["error"] == "invalid_request"
    signed = local_realm.sign(local_realm.claims("logout", aud=CLIENT_ID, nonce="\ud800"))
    response = answer(
        engine, "/kc/backchannel-logout", method="POST", form={"logout_token": signed}
    )
    assert response.status == 400
