"""kc-starlette with FastAPI: dependencies for logins, roles and bearer-token APIs.

Run it against the test realm (``kc_core/testing/realm.json``)::

    KEYCLOAK_URL=http://127.0.0.1:18080 python examples/fastapi/app.py   # http://127.0.0.1:8000

``KeycloakMiddleware`` serves ``/kc/login``, ``/kc/callback``, ``/kc/logout`` and
``/kc/backchannel-logout``; the dependencies answer through kc's engine (login redirect,
JSON 401 with ``WWW-Authenticate``, JSON 403, 503). ``SECRET_KEY`` is required (it encrypts
the session cookie); behind a proxy, set ``KEYCLOAK_PUBLIC_URL`` (see docs/starlette.md).

In production, run it under several workers with the Redis token store
(``KEYCLOAK_TOKEN_STORE``, read by the middleware like every ``KEYCLOAK_*`` setting)::

    cd examples/fastapi
    SECRET_KEY=... KEYCLOAK_TOKEN_STORE=redis://127.0.0.1:6379/0 \
        uvicorn --workers 2 --host 127.0.0.1 --port 8000 app:app

The default memory store serves one process only (``python app.py``, or one worker): under
several workers each has its own, and a login on one is unknown to the other (kc then shows
an error page naming the memory token store; see docs/token-stores.md).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from kc_starlette import (
    KeycloakMiddleware,
    KeycloakUser,
    SealedSessionMiddleware,
    require_bearer,
    require_login,
    require_roles,
)
from starlette.middleware import Middleware

from kc_core import Config

SECRET_KEY = os.environ.get("SECRET_KEY")
if not SECRET_KEY:
    raise SystemExit(
        "examples/fastapi: set SECRET_KEY (e.g. `python -c 'import secrets; "
        "print(secrets.token_hex(32))'`): it encrypts the session cookie"
    )
config = Config.load(
    server_url=os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080"),
    realm=os.environ.get("KEYCLOAK_REALM", "kc-test"),
    client_id=os.environ.get("KEYCLOAK_CLIENT_ID", "kc-web"),
    client_secret=os.environ.get("KEYCLOAK_CLIENT_SECRET", "kc-web-secret"),
)
app = FastAPI(
    middleware=[
        # Encrypted, not only signed: a pending login holds its PKCE verifier and nonce.
        Middleware(SealedSessionMiddleware, secret_key=SECRET_KEY),
        Middleware(KeycloakMiddleware, config=config),
    ]
)

LoggedIn = Annotated[KeycloakUser, Depends(require_login())]
Admin = Annotated[KeycloakUser, Depends(require_roles("realm:admin"))]
Reader = Annotated[KeycloakUser, Depends(require_bearer(roles=["kc-api:reader"]))]


@app.get("/")
async def home(request: Request) -> dict[str, Any]:
    return {"authenticated": request.user.is_authenticated, "user": request.user.display_name}


@app.get("/profile")
async def profile(user: LoggedIn) -> dict[str, Any]:
    return {"username": user.username, "email": user.email, "roles": sorted(user.realm_roles)}


@app.get("/admin")
async def admin(user: Admin) -> dict[str, Any]:
    return {"admin": user.display_name}


@app.get("/api/reports")
async def reports(user: Reader) -> dict[str, Any]:
    return {"reports": ["q1", "q2"], "reader": user.username}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
