"""kc-starlette example: a public home page, a profile behind a login, an admin page behind a
realm role, a bearer-token JSON API, and a logout button.

Run it against the test realm (``kc_core/testing/realm.json``)::

    KEYCLOAK_URL=http://127.0.0.1:18080 python examples/starlette/app.py   # http://127.0.0.1:8000

``SECRET_KEY`` is required (it encrypts the session cookie): the app refuses to start without
it. Any ``KEYCLOAK_*`` environment variable overrides a setting (``KEYCLOAK_REALM``,
``KEYCLOAK_LOGOUT_MODE`` ...); behind a proxy, set ``KEYCLOAK_PUBLIC_URL`` (see
docs/starlette.md).

In production, run it under several workers with the Redis token store
(``KEYCLOAK_TOKEN_STORE``)::

    cd examples/starlette
    SECRET_KEY=... KEYCLOAK_TOKEN_STORE=redis://127.0.0.1:6379/0 \
        uvicorn --workers 2 --host 127.0.0.1 --port 8000 app:app

The default memory store serves one process only (``python app.py``, or one worker): under
several workers each has its own, and a login on one is unknown to the other (kc then shows
an error page naming the memory token store; see docs/token-stores.md).
"""

from __future__ import annotations

import html
import os

from kc_starlette import (
    KeycloakMiddleware,
    SealedSessionMiddleware,
    bearer_required,
    login_required,
    roles_required,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from kc_core import Config


def kc_url(request: Request, path: str) -> str:
    """One of kc's endpoints as the browser reaches it: under the app's root path (behind a
    proxy's path prefix, ``uvicorn --root-path /app``)."""
    return html.escape(f"{request.scope.get('root_path', '')}/kc/{path}")


def logout_form(request: Request) -> str:
    return (
        f'<form method="post" action="{kc_url(request, "logout")}"><button>Log out</button></form>'
    )


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1>{body}")


async def home(request: Request) -> HTMLResponse:
    user = request.user
    if user.is_authenticated:
        return page("Home", f"<p>Hello {html.escape(user.display_name)}.</p>{logout_form(request)}")
    profile = html.escape(f"{request.scope.get('root_path', '')}/profile")
    return page("Home", f'<p><a href="{kc_url(request, "login")}?next={profile}">Log in</a></p>')


@login_required
async def profile(request: Request) -> HTMLResponse:
    user = request.user
    roles = ", ".join(sorted(user.realm_roles)) or "none"
    return page(
        "Profile",
        f"<p>{html.escape(user.username or '')} ({html.escape(user.email or 'no e-mail')}), "
        f"realm roles: {html.escape(roles)}</p>{logout_form(request)}",
    )


@roles_required("realm:admin")
async def admin(request: Request) -> HTMLResponse:
    return page("Admin", f"<p>Welcome, administrator {html.escape(request.user.display_name)}.</p>")


@bearer_required
async def api_me(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.user.identity, "username": request.user.username})


@bearer_required(roles=["kc-api:reader"])
async def api_reports(request: Request) -> JSONResponse:
    return JSONResponse({"reports": ["q1", "q2"], "reader": request.user.username})


def create_app() -> Starlette:
    """Build the example app; settings the environment does not give point at the test realm."""
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        raise SystemExit(
            "examples/starlette: set SECRET_KEY (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`): it encrypts the session cookie"
        )
    config = Config.load(
        server_url=os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080"),
        realm=os.environ.get("KEYCLOAK_REALM", "kc-test"),
        client_id=os.environ.get("KEYCLOAK_CLIENT_ID", "kc-web"),
        client_secret=os.environ.get("KEYCLOAK_CLIENT_SECRET", "kc-web-secret"),
    )
    return Starlette(
        routes=[
            Route("/", home),
            Route("/profile", profile),
            Route("/admin", admin),
            Route("/api/me", api_me),
            Route("/api/reports", api_reports),
        ],
        middleware=[
            # The session first: it wraps kc's middleware, which keeps logins in it (encrypted,
            # not only signed: a pending login holds its PKCE verifier and nonce).
            Middleware(SealedSessionMiddleware, secret_key=secret_key),
            Middleware(KeycloakMiddleware, config=config),
        ],
    )


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
