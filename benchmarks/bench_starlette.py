"""What kc-starlette adds to a Starlette or FastAPI request, against the same bare app.

Run: ``python benchmarks/bench_starlette.py`` (kc-core, kc-starlette and FastAPI installed).

Apps with the same route and endpoint body, called in-process through their ASGI entry point
with a prepared scope and no-op ``receive``/``send``, in the same run and the same harness:
the bare Starlette app and the Starlette app with ``KeycloakMiddleware`` in front and the
endpoint under ``@bearer_required(roles=["reader"])``; the bare FastAPI app and the FastAPI
app with the middleware, protected by the same decorator or by the dependency form
(``Depends(require_bearer(roles=["reader"]))``), that one against the bare app with a no-op
dependency in the same place (FastAPI's own cost of a dependency is not kc's), or by the
middleware alone (``require=Requirement.for_bearer(roles=["reader"])``: every route, refused
before routing) on a plain endpoint. For scale, a reference row with no target: Starlette's
own ``AuthenticationMiddleware`` and ``@requires("reader")`` around a backend that answers
one fixed user without looking at the request, the least any authentication in Starlette's
idiom costs. Tokens are
RS256 and shaped like Keycloak's, signed here; a local stand-in for Keycloak serves discovery
and the JWKS once, before timing. Each protected form is timed with a token seen before, a
first-seen token (a distinct token for every call, the cache on as in production) and
without a token (the 401), next to each bare app validating first-seen tokens by hand.
Samples are taken in interleaved rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _support import (
    CACHED,
    CLIENT_ID,
    FIRST_SEEN,
    NO_TOKEN,
    REALM,
    VALIDATE_ROW,
    adapter_targets,
    asgi_request_loop,
    asgi_scope,
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
    validating_asgi,
    validating_row,
)
from fastapi import Depends, FastAPI
from kc_starlette import KeycloakMiddleware, bearer_required, build_engine, require_bearer
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
    requires,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kc_core import Config
from kc_core.engine import Requirement

BARE_STARLETTE = "bare Starlette app"
BARE_FASTAPI = "bare FastAPI app"
BARE_FASTAPI_DEPENDENCY = "bare FastAPI app, a no-op Depends"
STARLETTE = "Starlette @bearer_required"
FASTAPI_DECORATOR = "FastAPI @bearer_required"
FASTAPI_DEPENDENCY = "FastAPI Depends(require_bearer)"
FASTAPI_MIDDLEWARE = "FastAPI KeycloakMiddleware(require=...)"
STARLETTE_FLOOR = "Starlette AuthenticationMiddleware + @requires, a fixed user (reference)"


async def endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def kc_middleware(server_url: str, require: Requirement | None = None) -> Middleware:
    """``KeycloakMiddleware`` on an engine whose discovery and keys are fetched now."""
    engine = build_engine(config=Config(server_url=server_url, realm=REALM, client_id=CLIENT_ID))
    engine.client.warm_up()  # never while timing
    return Middleware(KeycloakMiddleware, engine=engine, require=require)


def fastapi_required_app(server_url: str) -> FastAPI:
    """Every route of the FastAPI app behind ``KeycloakMiddleware(require=...)``: a bearer
    token with the role, refused before routing; the route a plain endpoint."""
    required = Requirement.for_bearer(roles=["reader"])
    app = FastAPI(middleware=[kc_middleware(server_url, required)])
    app.get("/api", response_class=PlainTextResponse)(endpoint)
    return app


def starlette_app(server_url: str | None) -> Starlette:
    """The bare app (no ``server_url``), or the same route behind kc's protection."""
    if server_url is None:
        return Starlette(routes=[Route("/api", endpoint)])
    return Starlette(
        routes=[Route("/api", bearer_required(roles=["reader"])(endpoint))],
        middleware=[kc_middleware(server_url)],
    )


class FixedUser(AuthenticationBackend):
    """Answers the same user with the role for every connection, reading nothing."""

    answer = (AuthCredentials(["authenticated", "reader"]), SimpleUser("alice"))

    async def authenticate(self, conn: Any) -> tuple[AuthCredentials, BaseUser]:
        return self.answer


def starlette_floor_app() -> Starlette:
    """The same route under Starlette's own authentication, its backend doing no work."""
    return Starlette(
        routes=[Route("/api", requires("reader")(endpoint))],
        middleware=[Middleware(AuthenticationMiddleware, backend=FixedUser())],
    )


async def no_op(request: Request) -> None:
    return None


def fastapi_app(server_url: str | None, *, dependency: bool = False) -> FastAPI:
    """The bare FastAPI app (with a no-op dependency when ``dependency``), or the same route
    under the decorator or the dependency."""
    if server_url is None:
        app = FastAPI()
        if dependency:
            nothing = Depends(no_op)

            async def bare(request: Request, user: None = nothing) -> Any:
                return PlainTextResponse("ok")

            app.get("/api", response_class=PlainTextResponse)(bare)
        else:
            app.get("/api", response_class=PlainTextResponse)(endpoint)
        return app
    app = FastAPI(middleware=[kc_middleware(server_url)])
    if dependency:
        reader = Depends(require_bearer(roles=["reader"]))

        async def api(request: Request, user: BaseUser = reader) -> Any:
            return PlainTextResponse("ok")

        app.get("/api", response_class=PlainTextResponse)(api)
    else:
        app.get("/api", response_class=PlainTextResponse)(
            bearer_required(roles=["reader"])(endpoint)
        )
    return app


def main(argv: list[str] | None = None) -> bool:
    args = rounds_arguments(__doc__, argv)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        few = max(1, args.number // 10)
        pool = token_pool(key, issuer, few * (args.rounds + 1))
        fresh = [asgi_scope("/api", each) for each in pool]
        bare = asgi_scope("/api", None)
        cached = asgi_scope("/api", token)
        bare_apps = {
            BARE_STARLETTE: starlette_app(None),
            BARE_FASTAPI: fastapi_app(None),
            BARE_FASTAPI_DEPENDENCY: fastapi_app(None, dependency=True),
        }
        rows: dict[str, Callable[[], float]] = {}
        for name, bare_app in bare_apps.items():
            rows[name] = asgi_request_loop(bare_app, bare, args.number)
            by_hand = validating_asgi(bare_app, own_validator(server_url))
            rows[validating_row(name)] = asgi_request_loop(by_hand, fresh.__getitem__, few)
        forms = {
            STARLETTE: (BARE_STARLETTE, starlette_app(server_url)),
            FASTAPI_DECORATOR: (BARE_FASTAPI, fastapi_app(server_url)),
            # FastAPI's own cost of solving a dependency is in its bare row, not in kc's share.
            FASTAPI_DEPENDENCY: (
                BARE_FASTAPI_DEPENDENCY,
                fastapi_app(server_url, dependency=True),
            ),
            FASTAPI_MIDDLEWARE: (BARE_FASTAPI, fastapi_required_app(server_url)),
        }
        for form, (_, app) in forms.items():  # each app its own engine: the pool is new to it
            rows[f"{form}, {CACHED}"] = asgi_request_loop(app, cached, args.number)
            rows[f"{form}, {FIRST_SEEN}"] = asgi_request_loop(app, fresh.__getitem__, few)
            rows[f"{form}, {NO_TOKEN}"] = asgi_request_loop(app, bare, args.number, expect=401)
        rows[STARLETTE_FLOOR] = asgi_request_loop(starlette_floor_app(), cached, args.number)
        rows[VALIDATE_ROW] = call_loop(own_validator(server_url).validate, pool.__getitem__, few)
        results = interleaved(rows, args.rounds)
    targets = [
        target
        for form, (bare_row, _) in forms.items()
        for target in adapter_targets(form, bare_row, validating_row(bare_row))
    ]
    baselines = {
        name: bare_row
        for form, (bare_row, _) in forms.items()
        for name in rows
        if name.startswith(f"{form},")
    }
    baselines.update({validating_row(name): name for name in bare_apps})
    baselines[STARLETTE_FLOOR] = BARE_STARLETTE
    return report(results, targets, baselines=baselines)


if __name__ == "__main__":
    main()
