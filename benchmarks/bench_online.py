"""What the opt-in online bearer checks cost once their answer is cached, against the JWT path.

Run: ``python benchmarks/bench_online.py`` (kc-core and kc-flask installed).

Three Flask apps with the same ``@bearer_required(roles=["reader"])`` view, called in-process
through their WSGI entry point with a prepared environ (the harness of ``bench_flask.py``):
local JWT validation only (the default), introspection on (``KEYCLOAK_BEARER_INTROSPECTION``),
and introspection plus the ended-session check (``KEYCLOAK_BEARER_REFUSE_ENDED_SESSIONS``,
memory store). Each online app asks the local stand-in for Keycloak once before timing; the
answer's TTL is set longer than the run, so every timed request is the warm-cache path. The
script fails if any timed request reached the introspection endpoint.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from _support import (
    CLIENT_ID,
    INTROSPECTIONS,
    REALM,
    faster_half_median,
    issuer_of,
    mint_token,
    new_rsa_key,
    per_call,
    print_request_table,
    request_arguments,
    stand_in_keycloak,
    time_rows,
    wsgi_environ,
    wsgi_request_loop,
)
from flask import Flask
from kc_flask import Keycloak, bearer_required

from kc_core import Config
from kc_core.engine import Engine, EngineSettings

TARGET_CACHED_US = 10.0  # bench_flask.py's target for a cached bearer token
TARGET_RATIO = 1.5  # the online path's added cost against the JWT path's


def make_app(server_url: str, **settings: object) -> Flask:
    """``/bare`` and ``/api`` (bearer token + role) with the engine ``settings`` given."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench",
        KEYCLOAK_SERVER_URL=server_url,
        KEYCLOAK_REALM=REALM,
        KEYCLOAK_CLIENT_ID=CLIENT_ID,
        KEYCLOAK_CLIENT_SECRET="bench-secret",
        **{f"KEYCLOAK_{name.upper()}": value for name, value in settings.items()},
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


def interleaved(rows: Mapping[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """µs per request of each row: samples taken in turn (row 1, 2, 3, 4, row 1, ...), so
    a load change on a shared machine hits every row alike; median of the faster half."""
    time_rows(rows, 1)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeat):
        for name, loop in rows.items():
            samples[name].append(loop())
    return {name: faster_half_median(values) * 1e6 for name, values in samples.items()}


def engine_lookups(server_url: str, token: str, repeat: int) -> dict[str, float]:
    """ns per ``BearerTokens.cached`` call (the engine's no-I/O bearer step), per verifier."""
    config = Config(
        server_url=server_url, realm=REALM, client_id=CLIENT_ID, client_secret="bench-secret"
    )
    header = f"Bearer {token}"
    results = {}
    for name, settings in (
        ("JWT path", EngineSettings()),
        ("introspection", EngineSettings(bearer_introspection=True, bearer_check_ttl=3600.0)),
    ):
        engine = Engine(config, settings=settings)
        tenant = engine.tenant_named("default")
        assert tenant is not None
        engine.bearer.verifier.verify(tenant, token)  # the one introspection, before timing
        assert engine.bearer.cached(tenant, header) is not None
        lookup = engine.bearer.cached
        results[name] = per_call(lambda: lookup(tenant, header), 100_000, repeat) * 1e9  # noqa: B023
    return results


def main() -> None:
    args = request_arguments(__doc__)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        token = mint_token(key, issuer_of(server_url))
        bare, api = wsgi_environ("/bare", None), wsgi_environ("/api", token)
        jwt_app = make_app(server_url)
        online = {"bearer_introspection": True, "bearer_check_ttl": 3600.0}
        introspecting = make_app(server_url, **online)
        both = make_app(server_url, bearer_refuse_ended_sessions=True, **online)
        rows = {
            "bare Flask view": wsgi_request_loop(jwt_app, bare, args.number),
            "JWT path, token seen before": wsgi_request_loop(jwt_app, api, args.number),
            "introspection, token seen before": wsgi_request_loop(introspecting, api, args.number),
            "introspection + ended sessions, token seen before": wsgi_request_loop(
                both, api, args.number
            ),
        }
        for app in (introspecting, both):  # the one introspection each, before timing
            wsgi_request_loop(app, api, 1)()
        asked_before = len(INTROSPECTIONS)
        results = interleaved(rows, args.repeat)
        asked_while_timed = len(INTROSPECTIONS) - asked_before
        lookups = engine_lookups(server_url, token, args.repeat)
    print_request_table(results, baseline="bare Flask view", target_us=TARGET_CACHED_US, width=50)
    base = results["bare Flask view"]
    jwt_added = results["JWT path, token seen before"] - base
    for name in (
        "introspection, token seen before",
        "introspection + ended sessions, token seen before",
    ):
        ratio = (results[name] - base) / jwt_added
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(
            f"{name}: {ratio:.2f}x the JWT path's added cost (target ≤ {TARGET_RATIO}x: {verdict})"
        )
    print(f"introspection calls while timing: {asked_while_timed} (before: {asked_before})")
    print()
    print("the engine's cached-token lookup alone (BearerTokens.cached), ns per call:")
    for name, ns in lookups.items():
        print(f"  {name:45} {ns:7.0f} ns  {ns / lookups['JWT path']:.2f}x")
    if asked_while_timed or asked_before != 2:
        sys.exit("the warm-cache rows must not reach Keycloak, and each app must ask once")


if __name__ == "__main__":
    main()
