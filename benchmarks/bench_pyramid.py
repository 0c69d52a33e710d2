"""What kc-pyramid adds to a Pyramid request: protected views against the same bare view.

Run: ``python benchmarks/bench_pyramid.py`` (kc-core and kc-pyramid installed).

Three Pyramid apps of one route each (``/api``), called in-process through their WSGI
entry point with a prepared environ, so only the protection differs between rows: no
protection, ``@bearer_required(roles=["reader"])`` and ``permission="role:reader"``
(answered by ``KeycloakSecurityPolicy``). Tokens are RS256 and shaped like Keycloak's, signed
here; a local stand-in for Keycloak serves discovery and the JWKS once, before timing. Each
protected form is timed with a token seen before, a first-seen token (a distinct token for
every call, the cache on as in production) and no token (the 401), next to
``TokenValidator.validate`` of first-seen tokens alone. Samples are taken in interleaved rounds.
"""

from __future__ import annotations

from typing import Any

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
from kc_pyramid import bearer_required, engine_of
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response

BARE = "bare Pyramid view"
BEARER_REQUIRED = "@bearer_required"
FORMS = (BEARER_REQUIRED, 'permission="role:reader"')
PATH = "/api"


def make_app(server_url: str, form: str | None = None) -> Any:
    """An app with one view at ``/api`` returning ``ok``: bare (no ``form``), or under one
    of :data:`FORMS`. Each app has one route, so routing costs every row the same.

    A bearer-only client: the app needs no session factory.
    """
    settings = {
        "keycloak.server_url": server_url,
        "keycloak.realm": REALM,
        "keycloak.client_id": CLIENT_ID,
        "keycloak.bearer_only": "true",
    }

    def ok(request: Any) -> Any:
        return Response("ok")

    with Configurator(settings=settings) as config:
        config.include("kc_pyramid")  # in the bare app too: only the protection differs
        config.add_route("api", PATH)
        if form is None:
            config.add_view(ok, route_name="api")
        elif form == BEARER_REQUIRED:
            config.add_view(bearer_required(roles=["reader"])(ok), route_name="api")
        else:
            config.add_view(ok, route_name="api", permission="role:reader")
        app = config.make_wsgi_app()
    request = Request.blank("/")
    request.registry = app.registry
    engine_of(request).client.warm_up()  # discovery and keys now, never while timing
    return app


def main(argv: list[str] | None = None) -> bool:
    args = rounds_arguments(__doc__, argv)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        bare = make_app(server_url)
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        few = max(1, args.number // 10)
        per_row = few * (args.rounds + 1)
        pool = token_pool(key, issuer, per_row * len(FORMS))
        by_hand = validating_wsgi(bare, own_validator(server_url))
        fresh_bare = [wsgi_environ(PATH, each) for each in pool]
        rows = {
            BARE: wsgi_request_loop(bare, wsgi_environ(PATH, None), args.number),
            validating_row(BARE): wsgi_request_loop(by_hand, fresh_bare.__getitem__, few),
        }
        for i, form in enumerate(FORMS):
            app = make_app(server_url, form)
            # Each form's first-seen row its own share of the pool: tokens the app never saw.
            fresh = [wsgi_environ(PATH, each) for each in pool[i * per_row : (i + 1) * per_row]]
            rows[f"{form}, {CACHED}"] = wsgi_request_loop(
                app, wsgi_environ(PATH, token), args.number
            )
            rows[f"{form}, {FIRST_SEEN}"] = wsgi_request_loop(app, fresh.__getitem__, few)
            rows[f"{form}, {NO_TOKEN}"] = wsgi_request_loop(
                app, wsgi_environ(PATH, None), args.number, expect="401"
            )
        rows[VALIDATE_ROW] = call_loop(own_validator(server_url).validate, pool.__getitem__, few)
        results = interleaved(rows, args.rounds)
    targets = [t for form in FORMS for t in adapter_targets(form, BARE, validating_row(BARE))]
    protected = [name for name in rows if name != BARE and name != VALIDATE_ROW]
    return report(results, targets, baselines=dict.fromkeys(protected, BARE))


if __name__ == "__main__":
    main()
