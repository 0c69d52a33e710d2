"""What kc-flask adds to a Flask request: a ``@bearer_required`` view against the same bare view.

Run: ``python benchmarks/bench_flask.py`` (kc-core and kc-flask installed).

One app, called in-process through its WSGI entry point with a prepared environ, so only the
protection differs between rows. Tokens are RS256 and shaped like Keycloak's, signed here; a
local stand-in for Keycloak serves discovery and the JWKS once, before timing. Rows: the bare
view; the bare view with a first-seen token validated by hand in the request (what
validating costs inside a request, the floor a first-seen request is measured against); the
protected view with a token seen before (the steady state of an API), with a first-seen
token (a distinct token for every call, the cache on as in production) and without a token
(the 401); and ``TokenValidator.validate`` of first-seen tokens in a tight loop (caches
warm: less than in a request). Samples are taken in interleaved rounds.
"""

from __future__ import annotations

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
from flask import Flask
from kc_flask import Keycloak, bearer_required

BARE = "bare Flask view"
FORM = "@bearer_required"


def make_app(server_url: str) -> Flask:
    """Two views returning the same body: ``/bare`` and ``/api`` (bearer token + role)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench",
        KEYCLOAK_SERVER_URL=server_url,
        KEYCLOAK_REALM=REALM,
        KEYCLOAK_CLIENT_ID=CLIENT_ID,
    )
    keycloak = Keycloak(app)

    @app.get("/bare")
    def bare() -> str:
        return "ok"

    @app.get("/api")
    @bearer_required(roles=["reader"])
    def api() -> str:
        return "ok"

    keycloak.client(app).warm_up()  # discovery and keys now, never while timing
    return app


def main(argv: list[str] | None = None) -> bool:
    args = rounds_arguments(__doc__, argv)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        app = make_app(server_url)
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        few = max(1, args.number // 10)
        pool = token_pool(key, issuer, few * (args.rounds + 1))
        fresh = [wsgi_environ("/api", each) for each in pool]
        by_hand = validating_wsgi(app, own_validator(server_url))
        fresh_bare = [wsgi_environ("/bare", each) for each in pool]
        rows = {
            BARE: wsgi_request_loop(app, wsgi_environ("/bare", None), args.number),
            validating_row(BARE): wsgi_request_loop(by_hand, fresh_bare.__getitem__, few),
            f"{FORM}, {CACHED}": wsgi_request_loop(app, wsgi_environ("/api", token), args.number),
            f"{FORM}, {FIRST_SEEN}": wsgi_request_loop(app, fresh.__getitem__, few),
            f"{FORM}, {NO_TOKEN}": wsgi_request_loop(
                app, wsgi_environ("/api", None), args.number, expect="401"
            ),
            VALIDATE_ROW: call_loop(own_validator(server_url).validate, pool.__getitem__, few),
        }
        results = interleaved(rows, args.rounds)
    protected = [name for name in rows if name.startswith(FORM)]
    targets = adapter_targets(FORM, BARE, validating_row(BARE))
    protected.append(validating_row(BARE))
    return report(results, targets, baselines=dict.fromkeys(protected, BARE))


if __name__ == "__main__":
    main()
