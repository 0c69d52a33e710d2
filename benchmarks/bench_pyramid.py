"""What kc-pyramid adds to a Pyramid request: protected views against the same bare view.

Run: ``python benchmarks/bench_pyramid.py`` (kc-core and kc-pyramid installed).

One Pyramid app, called in-process through its WSGI entry point with a prepared environ, so
only the protection differs between rows: ``/bare`` (no protection), ``/api``
(``@bearer_required(roles=["reader"])``) and ``/perm`` (``permission="role:reader"``,
answered by ``KeycloakSecurityPolicy``). The token is RS256 and shaped like Keycloak's,
signed here; a local stand-in for Keycloak serves discovery and the JWKS once, before
timing. A second app with the validator's cache off gives the first-seen row (a full
signature and claims check on every call).
"""

from __future__ import annotations

from typing import Any

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
from kc_pyramid import bearer_required, engine_of
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

TARGET_CACHED_US = 10.0


def make_app(server_url: str, *, cache_size: int) -> Any:
    """Three views returning the same body: ``/bare``, ``/api`` and ``/perm``.

    A bearer-only client: the app needs no session factory.
    """
    settings = {
        "keycloak.server_url": server_url,
        "keycloak.realm": REALM,
        "keycloak.client_id": CLIENT_ID,
        "keycloak.bearer_only": "true",
        "keycloak.token_cache_size": str(cache_size),
    }

    def ok(request: Any) -> Any:
        return Response("ok")

    with Configurator(settings=settings) as config:
        config.include("kc_pyramid")
        config.add_route("bare", "/bare")
        config.add_view(ok, route_name="bare")
        config.add_route("api", "/api")
        config.add_view(bearer_required(roles=["reader"])(ok), route_name="api")
        config.add_route("perm", "/perm")
        config.add_view(ok, route_name="perm", permission="role:reader")
        app = config.make_wsgi_app()
    request = Request.blank("/")
    request.registry = app.registry
    engine_of(request).client.warm_up()  # discovery and keys now, never while timing
    return app


def main() -> None:
    args = request_arguments(__doc__)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        cached_app = make_app(server_url, cache_size=4096)
        uncached_app = make_app(server_url, cache_size=0)
        token = mint_token(key, issuer_of(server_url))
        first_seen_number = max(1, args.number // 10)
        bare, api = wsgi_environ("/bare", None), wsgi_environ("/api", token)
        perm = wsgi_environ("/perm", token)
        rows = {
            "bare Pyramid view": wsgi_request_loop(cached_app, bare, args.number),
            "@bearer_required, token seen before": wsgi_request_loop(cached_app, api, args.number),
            'permission="role:reader", token seen before': wsgi_request_loop(
                cached_app, perm, args.number
            ),
            "@bearer_required, first-seen token": wsgi_request_loop(
                uncached_app, api, first_seen_number
            ),
            "bare Pyramid view (again, drift check)": wsgi_request_loop(
                uncached_app, bare, args.number
            ),
        }
        results = time_rows(rows, args.repeat)
    print_request_table(
        results, baseline="bare Pyramid view", target_us=TARGET_CACHED_US, width=46, label="aim"
    )


if __name__ == "__main__":
    main()
