"""kc-flask example: a public home page, a profile behind a login, an admin page behind a
realm role, a bearer-token JSON API, and a logout button.

Run it against the test realm (``kc_core/testing/realm.json``)::

    KEYCLOAK_URL=http://127.0.0.1:18080 python examples/flask/app.py     # http://127.0.0.1:5000

``FLASK_SECRET_KEY`` is required (it encrypts the session cookie): the app refuses to start
without it. Any ``FLASK_KEYCLOAK_*`` environment variable overrides a setting
(``FLASK_KEYCLOAK_REALM`` → ``KEYCLOAK_REALM``); behind a proxy, set
``FLASK_KEYCLOAK_PUBLIC_URL`` (or ``FLASK_TRUSTED_HOSTS``, see docs/flask.md).

In production, run the factory under a multi-process server with the Redis token store
(``FLASK_KEYCLOAK_TOKEN_STORE``, read as ``KEYCLOAK_TOKEN_STORE``)::

    cd examples/flask
    FLASK_SECRET_KEY=... FLASK_KEYCLOAK_TOKEN_STORE=redis://127.0.0.1:6379/0 \
        gunicorn -w 3 -b 127.0.0.1:5000 'app:create_app()'

The default memory store serves one process only (``python app.py``, or ``gunicorn -w 1``):
under several workers each has its own, and a login on one is unknown to the others (kc then
shows an error page naming the memory token store; see docs/token-stores.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template
from flask.typing import ResponseReturnValue
from kc_flask import (
    Keycloak,
    SealedCookieSessionInterface,
    bearer_required,
    current_user,
    login_required,
    roles_required,
)

keycloak = Keycloak()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the example app; ``config`` overrides the defaults and the environment."""
    # root_path: templates are found however this file is loaded (script, module, test).
    app = Flask(__name__, root_path=str(Path(__file__).resolve().parent))
    app.config.from_mapping(
        KEYCLOAK_SERVER_URL=os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080"),
        KEYCLOAK_REALM="kc-test",
        KEYCLOAK_CLIENT_ID="kc-web",
        KEYCLOAK_CLIENT_SECRET="kc-web-secret",
    )
    app.config.from_prefixed_env()
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        raise SystemExit(
            "examples/flask: set FLASK_SECRET_KEY (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`): it encrypts the session cookie"
        )
    # Encrypted, not only signed: the session holds the login's PKCE verifier and nonce.
    app.session_interface = SealedCookieSessionInterface()
    keycloak.init_app(app)

    @app.get("/")
    def home() -> ResponseReturnValue:
        return render_template("home.html")

    @app.get("/profile")
    @login_required
    def profile() -> ResponseReturnValue:
        return render_template("profile.html", user=current_user)

    @app.get("/admin")
    @roles_required("realm:admin")
    def admin() -> ResponseReturnValue:
        return render_template("admin.html", user=current_user)

    @app.get("/api/me")
    @bearer_required
    def api_me() -> ResponseReturnValue:
        return jsonify(sub=current_user.sub, username=current_user.username)

    @app.get("/api/reports")
    @bearer_required(roles=["kc-api:reader"])
    def api_reports() -> ResponseReturnValue:
        return jsonify(reports=[{"id": 1, "title": "Quarterly"}], reader=current_user.username)

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
