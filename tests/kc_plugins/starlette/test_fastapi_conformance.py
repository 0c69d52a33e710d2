"""kc's adapter conformance kit, run against a FastAPI app (dependencies) served by uvicorn."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import pytest
from starlette_support import SECRET_KEY

from kc_core.engine import Engine
from kc_core.testing.conformance import AdapterConformance, serve_asgi

pytestmark = pytest.mark.integration

fastapi = pytest.importorskip("fastapi")


def build_fastapi_app(engine: Engine) -> Any:
    """The kit's routes, protected with kc-starlette's FastAPI dependencies."""
    from fastapi.responses import PlainTextResponse
    from kc_starlette import KeycloakMiddleware, require_login, require_roles
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware

    app = fastapi.FastAPI(
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY, https_only=True),
            Middleware(KeycloakMiddleware, engine=engine),
        ]
    )

    @app.get("/", response_class=PlainTextResponse)
    async def home() -> str:
        return "home"

    @app.get("/public", response_class=PlainTextResponse)
    async def public() -> str:
        return "public"

    @app.get("/private", response_class=PlainTextResponse)
    async def private(user: Any = fastapi.Depends(require_login())) -> str:
        return f"private page of {user.username}"

    @app.get("/admin", response_class=PlainTextResponse)
    async def admin(user: Any = fastapi.Depends(require_roles("realm:admin"))) -> str:
        return f"admin page of {user.username}"

    return app


class TestFastAPIAdapter(AdapterConformance):
    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        return serve_asgi(build_fastapi_app(engine))
