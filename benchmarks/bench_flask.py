"""What kc-flask adds to a Flask request: a ``@bearer_required`` view against the same bare view.

Run: ``python benchmarks/bench_flask.py`` (kc-core and kc-flask installed).

Both apps are called in-process through their WSGI entry point with a prepared environ, in
the same run, so only the protection differs. The token is RS256 and shaped like Keycloak's,
signed here; a local stand-in for Keycloak serves discovery and the JWKS once, before
timing. Three rows: the bare view, the protected view with a token seen before (the
validator's cache hit: the steady state of an API), and with a first-seen token (cache
turned off: a full signature and claims check on every call).
"""

from __future__ import annotations

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
from flask import Flask
from kc_flask import Keycloak, bearer_required

TARGET_CACHED_US = 10.0


def make_app(server_url: str, *, cache_size: int) -> Flask:
    """Two views returning the same body: ``/bare`` and ``/api`` (bearer token + role)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench",
        KEYCLOAK_SERVER_URL=server_url,
        KEYCLOAK_REALM=REALM,
        KEYCLOAK_CLIENT_ID=CLIENT_ID,
        KEYCLOAK_TOKEN_CACHE_SIZE=cache_size,
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


def main() -> None:
    args = request_arguments(__doc__)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        cached_app = make_app(server_url, cache_size=4096)
        uncached_app = make_app(server_url, cache_size=0)
        token = mint_token(key, issuer_of(server_url))
        first_seen_number = max(1, args.number // 10)
        bare, api = wsgi_environ("/bare", None), wsgi_environ("/api", token)
        rows = {
            "bare Flask view": wsgi_request_loop(cached_app, bare, args.number),
            "@bearer_required, token seen before": wsgi_request_loop(cached_app, api, args.number),
            "@bearer_required, first-seen token": wsgi_request_loop(
                uncached_app, api, first_seen_number
            ),
            "bare Flask view (again, drift check)": wsgi_request_loop(
                uncached_app, bare, args.number
            ),
        }
        results = time_rows(rows, args.repeat)
    print_request_table(results, baseline="bare Flask view", target_us=TARGET_CACHED_US)


if __name__ == "__main__":
    main()
