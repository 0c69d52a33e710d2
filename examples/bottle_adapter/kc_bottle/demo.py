"""A tiny Bottle app protected by kc: ``python -m kc_bottle.demo`` (settings from the environment).

It also is the app the conformance kit drives: ``/``, ``/public``, ``/private`` (any
logged-in user) and ``/admin`` (realm role ``admin``), plus a few API routes.
"""

from __future__ import annotations

import json
import os

import bottle

from kc_core import Config
from kc_core.engine import Engine, EngineSettings, Requirement

from .extension import KeycloakPlugin, current_identity

__all__ = ["main", "make_app"]

_HOME = """<!doctype html><title>kc + Bottle</title>
<p>{who}</p>
<form method="post" action="/kc/logout"><button>Log out</button></form>
<p><a href="/private">private page</a> · <a href="/admin">admin page</a></p>
"""


def make_app(engine: Engine, *, protect_all: Requirement | None = None) -> bottle.Bottle:
    """The demo app served by ``engine``."""
    app = bottle.Bottle()
    app.install(KeycloakPlugin(engine, protect_all=protect_all))

    @app.get("/")
    def home() -> str:
        return _HOME.format(who="Welcome.")

    @app.get("/public")
    def public() -> str:
        return "public"

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/private", kc=True)
    def private() -> str:
        return f"hello {current_identity().username}"

    @app.get("/admin", kc=Requirement(roles=("realm:admin",)))
    def admin() -> str:
        return f"admin {current_identity().username}"

    @app.get("/api/items", kc=Requirement(roles=("kc-api:reader",), api=True))
    def items() -> str:
        bottle.response.content_type = "application/json"
        return json.dumps({"items": [1, 2, 3], "user": current_identity().username})

    @app.get("/api/profile", kc=Requirement(scopes=("profile",), api=True))
    def profile() -> str:
        return f"profile {current_identity().username}"

    @app.get("/api/phone", kc=Requirement(scopes=("phone",), api=True))
    def phone() -> str:
        return "phone"

    return app


def main() -> None:
    """Run the demo on http://127.0.0.1:8080 (register it as a redirect URI in Keycloak).

    ``KEYCLOAK_*`` variables set the client and the engine (``KEYCLOAK_PUBLIC_URL`` pins the
    app's public URL, as it must be behind a proxy).
    """
    app = make_app(Engine(Config.load(), settings=EngineSettings.from_mapping(os.environ)))
    bottle.run(app, host="127.0.0.1", port=8080)


if __name__ == "__main__":
    main()
