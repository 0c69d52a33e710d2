"""The conformance kit catches the adapter bugs adapters typically have.

Each case runs the kit (``pytester``, in a subprocess) over a deliberately broken adapter:
the example Bottle adapter with one hook or one line of its glue broken, or kc-starlette
running the blocking engine on its event loop. The kit's test for that kind of bug must fail;
the same selection over the unbroken adapter must pass. The inner runs reuse this session's
Keycloak (``KEYCLOAK_URL``).
"""

from __future__ import annotations

import textwrap

import pytest

from kc_core.testing import KeycloakRealm

pytestmark = pytest.mark.integration
pytest.importorskip("kc_bottle", reason="pip install ./examples/bottle_adapter")

CONFTEST = 'pytest_plugins = ["kc_core.testing.plugin"]\n'

BOTTLE_SUITE = """
import os

import bottle
import kc_bottle.extension as extension
import kc_bottle.hooks as hooks
from kc_bottle.demo import make_app

from kc_core.testing.conformance import AdapterConformance, serve_wsgi

BUG = os.environ["KC_BUG"]


def _response(status, body=b"", headers=(), location=None, keep_headers=True):
    response = bottle.HTTPResponse(body=body, status=status)
    if location is not None:
        response.set_header("Location", location)
    for name, value in headers if keep_headers else ():
        response.set_header(name, value)  # set, not add: a repeated Set-Cookie is lost
    return response


if BUG == "set_cookie_set_not_added":
    hooks.kc_redirect = lambda request, location, headers: _response(302, b"", headers, location)
    hooks.kc_response = lambda request, status, body, content_type, headers: _response(
        status, body, headers
    )
elif BUG == "redirect_drops_headers":
    hooks.kc_redirect = lambda request, location, headers: _response(
        302, b"", headers, location, keep_headers=False
    )
elif BUG == "guard_headers_dropped":
    finish = extension.KeycloakPlugin._finish
    extension.KeycloakPlugin._finish = lambda self, result, session, guard: finish(
        self, result, session, None
    )
elif BUG in ("session_cookie_without_httponly_samesite", "session_cookie_not_secure"):
    set_cookie = bottle.BaseResponse.set_cookie
    dropped = ("secure",) if BUG == "session_cookie_not_secure" else ("httponly", "samesite")

    def careless_set_cookie(self, name, value, **options):
        kept = {key: option for key, option in options.items() if key not in dropped}
        return set_cookie(self, name, value, **kept)

    bottle.BaseResponse.set_cookie = careless_set_cookie
elif BUG == "query_last_value":
    hooks.kc_request_query = lambda request: {
        key: request.query.decode().getall(key)[-1] for key in request.query
    }
elif BUG == "url_drops_query":
    hooks.kc_request_url = lambda request: str(request.url).split("?")[0]
elif BUG == "emptied_session_kept":
    commit = extension.RequestSession.commit
    extension.RequestSession.commit = lambda self: (
        None if self.id is not None and not self.data else commit(self)
    )
else:
    assert BUG == "none", BUG


class TestBottle(AdapterConformance):
    def serve(self, engine):
        return serve_wsgi(make_app(engine))
"""

STARLETTE_SUITE = """
import os

from kc_starlette import KeycloakMiddleware, login_required, roles_required
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kc_core.engine import AsyncEngine, Engine
from kc_core.testing.conformance import AdapterConformance, serve_asgi

if os.environ["KC_BUG"] == "sync_engine_on_the_loop":
    # The async adapter awaits the engine, but the engine's blocking calls run on the loop.
    for name in ("protect", "authenticate", "route", "login", "callback", "logout",
                 "backchannel_logout", "authorize"):
        def on_loop(self, *args, _blocking=getattr(Engine, name)):
            async def run():
                return _blocking(self.engine, *args)
            return run()
        setattr(AsyncEngine, name, on_loop)


async def page(request):
    return PlainTextResponse(f"page of {getattr(request.user, 'username', None)}")


def build_app(engine):
    return Starlette(
        routes=[
            Route("/", page),
            Route("/public", page),
            Route("/private", login_required(page)),
            Route("/admin", roles_required("realm:admin")(page)),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key="kit-test-secret", https_only=True),
            Middleware(KeycloakMiddleware, engine=engine),
        ],
    )


class TestStarlette(AdapterConformance):
    def serve(self, engine):
        return serve_asgi(build_app(engine))
"""

#: bug -> (adapter suite, the kit test that must catch it)
CASES = {
    "set_cookie_set_not_added": ("bottle", "test_every_set_cookie_header_reaches_the_browser"),
    "redirect_drops_headers": ("bottle", "test_every_set_cookie_header_reaches_the_browser"),
    "guard_headers_dropped": ("bottle", "test_refreshed_token_cookies_reach_the_browser"),
    "session_cookie_without_httponly_samesite": (
        "bottle",
        "test_cookies_the_app_sets_are_httponly_and_samesite",
    ),
    "session_cookie_not_secure": (
        "bottle",
        "test_cookies_are_secure_and_urls_https_when_served_over_https",
    ),
    "query_last_value": ("bottle", "test_a_repeated_query_parameter_counts_by_its_first_value"),
    "url_drops_query": ("bottle", "test_login_lands_on_the_page_with_its_query_string"),
    "emptied_session_kept": ("bottle", "test_logout_clears_the_session_cookie"),
    "sync_engine_on_the_loop": ("starlette", "test_the_event_loop_is_free_while_the_engine_waits"),
}
SUITES = {"bottle": BOTTLE_SUITE, "starlette": STARLETTE_SUITE}


@pytest.fixture
def run_kit(
    pytester: pytest.Pytester, keycloak: KeycloakRealm, monkeypatch: pytest.MonkeyPatch
) -> object:
    monkeypatch.setenv("KEYCLOAK_URL", keycloak.base_url)
    monkeypatch.setenv("KC_ADMIN_USERNAME", keycloak.admin_username)
    monkeypatch.setenv("KC_ADMIN_PASSWORD", keycloak.admin_password)
    pytester.makeconftest(CONFTEST)

    def run(suite: str, bug: str, test: str) -> pytest.RunResult:
        monkeypatch.setenv("KC_BUG", bug)
        pytester.makepyfile(**{f"test_{suite}_kit": textwrap.dedent(SUITES[suite])})
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", test, timeout=600)

    return run


@pytest.mark.parametrize("bug", sorted(CASES))
def test_the_kit_fails_a_broken_adapter(run_kit: object, bug: str) -> None:
    suite, test = CASES[bug]
    result = run_kit(suite, bug, test)  # type: ignore[operator]
    failed = [line for line in result.outlines if line.startswith("FAILED") and test in line]
    assert failed, f"the kit let {bug} pass:\n" + "\n".join(result.outlines[-30:])


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_the_same_kit_tests_pass_the_unbroken_adapter(run_kit: object, suite: str) -> None:
    tests = sorted({test for s, test in CASES.values() if s == suite})
    result = run_kit(suite, "none", " or ".join(tests))  # type: ignore[operator]
    outcomes = result.parseoutcomes()
    report = "\n".join(result.outlines[-40:])
    assert outcomes.get("failed", 0) == 0, report
    assert outcomes.get("errors", 0) == 0, report
    assert outcomes.get("passed", 0) == 2 * len(tests)  # both stores
