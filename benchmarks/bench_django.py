"""What kc-django adds to a Django request: a ``@bearer_required`` view against the bare app.

Run: ``python benchmarks/bench_django.py`` (kc-core and kc-django installed).

Two Django WSGI handlers of one project, called in-process with a prepared environ, in the
same run and the same harness: the bare handler (no middleware) and the handler with
``KeycloakMiddleware``. Both serve the same view body; ``/bare`` is unprotected, ``/api`` is
under ``@bearer_required(roles=["reader"])``. Tokens are RS256 and shaped like Keycloak's,
signed here; a local stand-in for Keycloak serves discovery and the JWKS once, before
timing. Rows: the bare app; the kc handler on the unprotected view (the middleware's own
cost, ``request.user`` untouched); the protected view with a token seen before (the
validator's cache hit: the steady state of an API); with a first-seen token (a distinct
token minted beforehand for every call, the cache on as in production: a full signature
and claims check per call); the bare app again (drift check).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import django
from _support import (
    CLIENT_ID,
    REALM,
    issuer_of,
    mint_token,
    new_rsa_key,
    print_request_table,
    request_arguments,
    stand_in_keycloak,
    time_rows,
    wsgi_environ,
    wsgi_request_loop,
)
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test.utils import override_settings
from django.urls import path

TARGET_CACHED_US = 15.0
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
    urlpatterns[:] = [path("bare", bare), path("api", _protected_view())]


def handler(middleware: Sequence[str]) -> WSGIHandler:
    """A WSGI handler of the project with ``middleware`` (loaded now, kept afterwards)."""
    with override_settings(MIDDLEWARE=list(middleware)):
        return WSGIHandler()


def environ_for(path: str, token: str | None) -> dict[str, Any]:
    """A GET environ with the host as ``ALLOWED_HOSTS`` lists it and an empty request body."""
    return wsgi_environ(path, token, {"HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO()})


def main() -> None:
    args = request_arguments(__doc__)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        configure(server_url)
        from kc_django import engine_of

        engine_of().client.warm_up()  # discovery and keys now, never while timing
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        first_seen_number = max(1, args.number // 10)
        # One distinct token per call of every first-seen sample (and its warm-up).
        fresh = [
            environ_for("/api", mint_token(key, issuer))
            for _ in range(first_seen_number * (args.repeat + 1))
        ]
        bare_app, kc_app = handler([]), handler(MIDDLEWARE)
        rows = {
            "bare Django app": wsgi_request_loop(bare_app, environ_for("/bare", None), args.number),
            "KeycloakMiddleware, unprotected view": wsgi_request_loop(
                kc_app, environ_for("/bare", token), args.number
            ),
            "@bearer_required, token seen before": wsgi_request_loop(
                kc_app, environ_for("/api", token), args.number
            ),
            "@bearer_required, first-seen token": wsgi_request_loop(
                kc_app, fresh.__getitem__, first_seen_number
            ),
            "bare Django app (again, drift check)": wsgi_request_loop(
                bare_app, environ_for("/bare", None), args.number
            ),
        }
        results = time_rows(rows, args.repeat)
    print_request_table(results, baseline="bare Django app", target_us=TARGET_CACHED_US)


if __name__ == "__main__":
    main()
