"""kc's adapters side by side with their peers: the same tokens, the same stand-in for Keycloak.

Run: ``python benchmarks/bench_peers.py`` in a virtual environment holding kc, its adapters
and ``benchmarks/requirements.txt`` (the peers are not dependencies of kc).

Per framework, in one process and one run, called in-process through the WSGI or ASGI entry
point with a prepared request, samples taken in interleaved rounds:

- FastAPI: the bare app; kc-starlette's ``@bearer_required``, ``Depends(require_bearer)`` and
  ``KeycloakMiddleware(require=...)`` (every route protected, refused before routing, as the
  peer does);
  fastapi-keycloak-middleware (its middleware on every route, validating with python-keycloak
  and jwcrypto against the realm's key set, iss and aud checked as kc checks them);
- Flask: the bare view; kc-flask's ``@bearer_required``; Authlib's ``ResourceProtector``
  with an RFC 6750 bearer token validator decoding the JWT with Authlib's own JOSE (the key
  set fetched once; RFC 9068's validator refuses Keycloak's tokens: ``typ`` is ``JWT``);
- Django: the bare view; kc-django's ``@bearer_required``; a bare Django REST framework view
  and the same view with mozilla-django-oidc's ``OIDCAuthentication`` (it asks Keycloak's
  userinfo endpoint on every request, as designed, and finds the Django user in the database).

kc's routes also check a client role; the peers only authenticate (kc does more work). Rows:
a token seen before, a first-seen token (a distinct token for every call) and no token; each
figure is the µs added over the same framework's bare request (DRF's bare view for
mozilla-django-oidc). Before timing, each implementation must admit the token and refuse the
same token with a damaged signature. The stand-in for Keycloak (``_support``) serves
discovery, the JWKS and userinfo on a loopback port.
"""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import django
from _support import (
    CLIENT_ID,
    REALM,
    asgi_request_loop,
    asgi_scope,
    interleaved,
    issuer_of,
    mint_token,
    new_rsa_key,
    rounds_arguments,
    stand_in_keycloak,
    token_pool,
    wsgi_environ,
    wsgi_request_loop,
)
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from bench_flask import make_app as kc_flask_app
from bench_starlette import fastapi_app as kc_fastapi_app
from bench_starlette import fastapi_required_app
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.test.utils import override_settings
from django.urls import path
from fastapi import FastAPI
from fastapi_keycloak_middleware import KeycloakConfiguration
from fastapi_keycloak_middleware import KeycloakMiddleware as FastAPIKeycloakMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse

ROWS = {"cached": "token seen before", "first": "first-seen token", "none": "no token"}

# -- FastAPI: fastapi-keycloak-middleware ------------------------------------------------------


async def endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def fastapi_keycloak_middleware_app(server_url: str) -> FastAPI:
    """A FastAPI app whose route sits behind fastapi-keycloak-middleware."""
    app = FastAPI()
    checks = {"iss": issuer_of(server_url), "aud": CLIENT_ID, "exp": None}
    configuration = KeycloakConfiguration(
        url=server_url,
        realm=REALM,
        client_id=CLIENT_ID,
        validation_options={"check_claims": checks},
    )
    app.add_middleware(FastAPIKeycloakMiddleware, keycloak_configuration=configuration)
    app.get("/api", response_class=PlainTextResponse)(endpoint)
    return app


# -- Flask: Authlib's resource protector ----------------------------------------------------------


class _AuthlibToken(dict[str, Any]):
    """What Authlib's RFC 6750 validator asks of a token, over its validated claims."""

    def is_expired(self) -> bool:
        return bool(self["exp"] < time.time())

    def is_revoked(self) -> bool:
        return False

    def get_scope(self) -> str | None:
        return self.get("scope")


class KeycloakJwtValidator(BearerTokenValidator):  # type: ignore[misc]
    """Authlib's bearer token validator, decoding Keycloak's JWTs with Authlib's JOSE."""

    def __init__(self, jwks: Mapping[str, Any], issuer: str) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # Authlib 1.x names joserfc as its JOSE successor; authlib.jose still serves.
            warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
            from authlib.jose import JsonWebKey, jwt
            from authlib.jose.errors import JoseError
        self.jwt, self.refusal = jwt, JoseError
        self.keys = JsonWebKey.import_key_set(jwks)
        self.options = {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": CLIENT_ID},
            "exp": {"essential": True},
        }

    def authenticate_token(self, token_string: str) -> _AuthlibToken | None:
        try:
            claims = self.jwt.decode(token_string, self.keys, claims_options=self.options)
            claims.validate()
        except (self.refusal, ValueError):
            return None
        return _AuthlibToken(claims)


def flask_app(server_url: str) -> Any:
    """kc-flask's benchmark app (``/bare``, ``/api``) plus ``/authlib`` behind Authlib."""
    app = kc_flask_app(server_url)
    certs = f"{issuer_of(server_url)}/protocol/openid-connect/certs"
    with urllib.request.urlopen(certs, timeout=10) as answer:  # once, before timing
        jwks = json.load(answer)
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(KeycloakJwtValidator(jwks, issuer_of(server_url)))

    @app.get("/authlib")
    @require_oauth()
    def authlib_api() -> str:
        return "ok"

    return app


# -- Django: kc-django, and mozilla-django-oidc on Django REST framework -------------------------

urlpatterns: list[Any] = []


def bare_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def configure_django(server_url: str) -> tuple[WSGIHandler, WSGIHandler]:
    """Configure one Django project (this module its URLconf) for kc and mozilla-django-oidc;
    the handler without middleware, and the one with kc's."""
    issuer = issuer_of(server_url)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "mozilla_django_oidc",
            "kc_django",
        ],
        MIDDLEWARE=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        AUTHENTICATION_BACKENDS=["mozilla_django_oidc.auth.OIDCAuthenticationBackend"],
        OIDC_RP_CLIENT_ID=CLIENT_ID,
        OIDC_RP_CLIENT_SECRET="bench",
        OIDC_RP_SIGN_ALGO="RS256",
        OIDC_OP_AUTHORIZATION_ENDPOINT=f"{issuer}/protocol/openid-connect/auth",
        OIDC_OP_TOKEN_ENDPOINT=f"{issuer}/protocol/openid-connect/token",
        OIDC_OP_USER_ENDPOINT=f"{issuer}/protocol/openid-connect/userinfo",
        OIDC_OP_JWKS_ENDPOINT=f"{issuer}/protocol/openid-connect/certs",
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
        USE_TZ=True,
        LOGGING_CONFIG=None,
        KEYCLOAK={"SERVER_URL": server_url, "REALM": REALM, "CLIENT_ID": CLIENT_ID},
    )
    django.setup()
    from django.core.management import call_command
    from kc_django import bearer_required, engine_of
    from mozilla_django_oidc.contrib.drf import OIDCAuthentication
    from rest_framework.permissions import AllowAny, IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import APIView

    call_command("migrate", run_syncdb=True, verbosity=0, skip_checks=True)

    class BareApi(APIView):  # type: ignore[misc]
        authentication_classes: ClassVar[list[Any]] = []
        permission_classes: ClassVar[list[Any]] = [AllowAny]

        def get(self, request: Any) -> Any:
            return Response("ok")

    class MozillaApi(BareApi):
        authentication_classes: ClassVar[list[Any]] = [OIDCAuthentication]
        permission_classes: ClassVar[list[Any]] = [IsAuthenticated]

    urlpatterns[:] = [
        path("bare", bare_view),
        path("api", bearer_required(roles=["reader"])(bare_view)),
        path("drf-bare", BareApi.as_view()),
        path("mozilla", MozillaApi.as_view()),
    ]
    engine_of().client.warm_up()  # discovery and keys now, never while timing
    with override_settings(MIDDLEWARE=[]):
        bare = WSGIHandler()
    with override_settings(MIDDLEWARE=["kc_django.middleware.KeycloakMiddleware"]):
        kc = WSGIHandler()
    return bare, kc


def django_environ(path: str, token: str | None) -> dict[str, Any]:
    return wsgi_environ(path, token, {"HTTP_HOST": "127.0.0.1", "wsgi.input": io.BytesIO()})


# -- the run ------------------------------------------------------------------------------------


class Contender:
    """One implementation: its app, path and bare row; loops are built from these."""

    def __init__(self, name: str, framework: str, bare: str, loop: Callable[..., Any]) -> None:
        self.name, self.framework, self.bare, self.loop = name, framework, bare, loop


def _damaged(token: str) -> str:
    head, _, signature = token.rpartition(".")
    return f"{head}.{signature[:-6]}{'A' if signature[-6] != 'A' else 'B'}{signature[-5:]}"


def main(argv: list[str] | None = None) -> bool:
    args = rounds_arguments(__doc__, argv, number=1000)
    for name in ("fastapi_keycloak_middleware", "mozilla_django_oidc", "django.request"):
        # They log refusals; an app routes that log somewhere, not to this terminal.
        logging.getLogger(name).setLevel(logging.CRITICAL)
    key = new_rsa_key()
    with stand_in_keycloak(key) as server_url:
        issuer = issuer_of(server_url)
        token = mint_token(key, issuer)
        few = max(1, args.number // 10)
        per_row = few * (args.rounds + 1)
        bare_django, kc_django = configure_django(server_url)
        flask = flask_app(server_url)
        fastapi = {
            "bare FastAPI app": kc_fastapi_app(None),
            "kc-starlette FastAPI @bearer_required": kc_fastapi_app(server_url),
            "kc-starlette FastAPI Depends(require_bearer)": kc_fastapi_app(
                server_url, dependency=True
            ),
            "kc-starlette FastAPI KeycloakMiddleware(require=...)": fastapi_required_app(
                server_url
            ),
            "fastapi-keycloak-middleware": fastapi_keycloak_middleware_app(server_url),
        }

        def asgi(app: Any) -> Callable[..., Any]:
            def loop(token_of: Any, number: int, expect: int = 200) -> Callable[[], float]:
                scope_of = token_of if callable(token_of) else (lambda i: token_of)
                scopes: dict[int, Any] = {}

                def scope(i: int) -> Any:
                    return scopes.setdefault(i, asgi_scope("/api", scope_of(i)))

                return asgi_request_loop(app, scope, number, expect)

            return loop

        def wsgi(app: Any, route: str, environ: Callable[..., Any] = wsgi_environ) -> Any:
            def loop(token_of: Any, number: int, expect: int = 200) -> Callable[[], float]:
                token_at = token_of if callable(token_of) else (lambda i: token_of)
                return wsgi_request_loop(
                    app, lambda i: environ(route, token_at(i)), number, str(expect)
                )

            return loop

        bare_fastapi = "bare FastAPI app"
        contenders = [
            Contender(name, "FastAPI", bare_fastapi, asgi(app))
            for name, app in fastapi.items()
            if name != bare_fastapi
        ]
        contenders += [
            Contender("kc-flask @bearer_required", "Flask", "bare Flask view", wsgi(flask, "/api")),
            Contender(
                "Authlib ResourceProtector", "Flask", "bare Flask view", wsgi(flask, "/authlib")
            ),
            Contender(
                "kc-django @bearer_required",
                "Django",
                "bare Django view",
                wsgi(kc_django, "/api", django_environ),
            ),
            Contender(
                "mozilla-django-oidc (DRF)",
                "Django",
                "bare DRF view",
                wsgi(bare_django, "/mozilla", django_environ),
            ),
        ]
        bares = {
            bare_fastapi: asgi(fastapi[bare_fastapi])(None, args.number),
            "bare Flask view": wsgi(flask, "/bare")(None, args.number),
            "bare Django view": wsgi(bare_django, "/bare", django_environ)(None, args.number),
            "bare DRF view": wsgi(bare_django, "/drf-bare", django_environ)(None, args.number),
        }
        # Each implementation admits the token and refuses it with a damaged signature.
        for contender in contenders:
            print(f"checking {contender.name}: admits the token, refuses it damaged")
            contender.loop(token, 1)()
            contender.loop(_damaged(token), 1, 401)()
        pool = token_pool(key, issuer, per_row * len(contenders))
        rows: dict[str, Callable[[], float]] = dict(bares)
        for i, contender in enumerate(contenders):
            share = pool[i * per_row : (i + 1) * per_row]
            rows[f"{contender.name}, {ROWS['cached']}"] = contender.loop(token, args.number)
            rows[f"{contender.name}, {ROWS['first']}"] = contender.loop(share.__getitem__, few)
            rows[f"{contender.name}, {ROWS['none']}"] = contender.loop(None, args.number, 401)
        results = interleaved(rows, args.rounds)
    return print_peers(results, contenders)


def print_peers(results: Mapping[str, float], contenders: list[Contender]) -> bool:
    """The table (µs added over each one's bare request), then whether kc leads every row."""
    added = {
        (c.name, row): results[f"{c.name}, {label}"] - results[c.bare]
        for c in contenders
        for row, label in ROWS.items()
    }
    width = max(len(c.name) for c in contenders) + 1
    print("µs added over the same framework's bare request (faster half of interleaved rounds)")
    print(f"{'':{width}} {'cached':>9} {'first-seen':>11} {'no token':>9}")
    for bare in dict.fromkeys(c.bare for c in contenders):
        print(f"{bare + ' (µs per request)':{width}} {results[bare]:9.2f}")
    for c in contenders:
        cells = [added[(c.name, row)] for row in ROWS]
        print(f"{c.name:{width}} {cells[0]:9.2f} {cells[1]:11.2f} {cells[2]:9.2f}")
    print()
    # A peer may refuse before routing, below its bare request: then no ratio, the sign says.
    print("kc ahead of the peer: kc's added cost below the peer's (ratio kc / peer < 1)")
    all_met = True
    for peer in (c for c in contenders if not c.name.startswith("kc-")):
        for kc in (c for c in contenders if c.name.startswith("kc-")):
            if kc.framework != peer.framework:
                continue
            for row, label in ROWS.items():
                mine, theirs = added[(kc.name, row)], added[(peer.name, row)]
                met = mine < theirs
                all_met &= met
                ratio = f"{mine / theirs:6.2f}" if theirs > 0 else "  peer"
                verdict = "met   " if met else "MISSED"
                print(f"{verdict} {ratio} (< 1)  {kc.name} / {peer.name}, {label}")
    return all_met


if __name__ == "__main__":
    main()
