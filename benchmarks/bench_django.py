"""What kc-django adds to a Django request: a ``@bearer_required`` view against the bare app.

Run: ``python benchmarks/bench_django.py`` (kc-core and kc-django installed).

Two Django WSGI handlers of one project, called in-process with a prepared environ, in the
same run and the same harness: the bare handler (no middleware) and the handler with
``KeycloakMiddleware``. Both serve the same view body; ``/bare`` is unprotected, ``/api`` is
under ``@bearer_required(roles=["reader"])``. Tokens are RS256 and shaped like Keycloak's,
signed here; a local stand-in for Keycloak serves discovery and the JWKS once, before
timing. Rows: the bare app; the kc handler on the unprotected view (the middleware's own
cost, ``request.user`` untouched); the protected view with a token seen before (the steady
state of an API), with a first-seen token (a distinct token for every call, the cache on as
in production) and without a token (the 401); and ``TokenValidator.validate`` of first-seen
tokens alone. Samples are taken in interleaved rounds.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import django
from _support import (
    CACHED,
    CLIENT_ID,
    FIRST_SEEN,
    NO_TOKEN,
    REALM,
    VALIDATE_ROW,
    adapter_targets,
    call_loop,
    interleaved,
    issuer_of,
    mint_token,
    new_rsa_key,
    own_validator,
    report,
    rounds_arguments,
    stand_in_keycloak,
    token_pool,
    validating_row,
    validating_wsgi,
    wsgi_environ,
    wsgi_request_loop,
)
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test.utils import override_settings
from django.urls import path

BARE = "bare Django app"
FORM = "@bearer_required"
MIDDLEWARE = ["kc_django.middleware.KeycloakMiddleware"]


# -- the project: this module is its URLconf --------------------------------------------------


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def _protected_view() -> Callable[[HttpRequest], HttpResponse]:
    from kc_django import bearer_required

    @bearer_required(roles=["reader"])
    def api(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    return api


urlpatterns: list[Any] = []


def configure(server_url: str) -> None:
    """Configure Django for the benchmark (this module is the URLconf)."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["kc_django"],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
        KEYCLOAK={"SERVER_URL": server_url, "REALM": REALM, "CLIENT_ID": CLIENT_ID},
    )
    django.setup()
    # Django logs every 4xx answer; the apps it serves route that log somewhere, not here.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    urlpatterns[:] = [path("bare", bare), path("api", _protected_view())]


def handler(middleware: Sequence[str]) -> WSGIHandler:
    """A WSGI handler of the project with ``middleware`` (loaded now, kept afterwards)."""
    with override_settings(MIDDLEWARE=list(middleware)):
        return WSGIHandler()


def environ_for(path: str, token: str | None) -> dict[str, Any]:
    """A GET environ with the host as ``ALLOWED_HOSTS`` lists it and an empty request body."""
    return wsgi_environ(path, token, {"HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO()})


def main(argv: list[str] | None = None) -> bool:
    args = rounds_arguments(__doc__, argv)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        configure(server_url)
        from kc_django import engine_of

        engine_of().client.warm_up()  # discovery and keys now, never while timing
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        few = max(1, args.number // 10)
        pool = token_pool(key, issuer, few * (args.rounds + 1))
        fresh = [environ_for("/api", each) for each in pool]
        bare_app, kc_app = handler([]), handler(MIDDLEWARE)
        by_hand = validating_wsgi(bare_app, own_validator(server_url))
        fresh_bare = [environ_for("/bare", each) for each in pool]
        rows = {
            BARE: wsgi_request_loop(bare_app, environ_for("/bare", None), args.number),
            validating_row(BARE): wsgi_request_loop(by_hand, fresh_bare.__getitem__, few),
            "KeycloakMiddleware, unprotected view": wsgi_request_loop(
                kc_app, environ_for("/bare", token), args.number
            ),
            f"{FORM}, {CACHED}": wsgi_request_loop(kc_app, environ_for("/api", token), args.number),
            f"{FORM}, {FIRST_SEEN}": wsgi_request_loop(kc_app, fresh.__getitem__, few),
            f"{FORM}, {NO_TOKEN}": wsgi_request_loop(
                kc_app, environ_for("/api", None), args.number, expect="401"
            ),
            VALIDATE_ROW: call_loop(own_validator(server_url).validate, pool.__getitem__, few),
        }
        results = interleaved(rows, args.rounds)
    protected = [name for name in rows if name not in (BARE, VALIDATE_ROW)]
    targets = adapter_targets(FORM, BARE, validating_row(BARE))
    return report(results, targets, baselines=dict.fromkeys(protected, BARE))


if __name__ == "__main__":
    main()
