"""kc's adapter conformance kit, run against a Flask app built with kc-flask."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from flask import Flask
from kc_flask import Keycloak, current_user, login_required, roles_required

from kc_core.engine import Engine
from kc_core.testing.conformance import AdapterConformance, serve_wsgi

pytestmark = pytest.mark.integration


def conformance_app(engine: Engine) -> Flask:
    """The routes the kit expects, protected the Flask way."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "conformance-secret-key"
    Keycloak(app, engine=engine)

    @app.get("/")
    def home() -> str:
        return "home"

    @app.get("/public")
    def public() -> str:
        return "public"

    @app.get("/private")
    @login_required
    def private() -> str:
        return f"private page of {current_user.username}"

    @app.get("/admin")
    @roles_required("realm:admin")
    def admin() -> str:
        return f"admin page of {current_user.username}"

    return app


class TestFlaskAdapter(AdapterConformance):
    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        return serve_wsgi(conformance_app(engine))
