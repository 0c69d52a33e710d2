# The earlier library's docs, section 4.3 (shared/seed/keycloak-client-docs.txt), a test input:
# only its import is changed (keycloak.extensions.flask -> kc_flask), and the printed page's
# app.wsgi (an attribute Flask never had) is the app.wsgi_app the repository's example wraps.
# Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
#! /usr/bin/env python
from flask import Flask

from kc_flask import AuthenticationMiddleware

app = Flask(__name__)
app.config["SECRET_KEY"] = "secret0123456789"


app.wsgi_app = AuthenticationMiddleware(
    app.wsgi_app,
    app.config,
    app.session_interface,
    callback_url="http://localhost:5000/kc/callback",
    redirect_uri="/howdy",
    logout_uri="/logout"
)


@app.route("/howdy")
def howdy():
    return "Howdy!"

@app.route("/logout")
def logout():
    return "User logged out!"


if __name__ == "__main__":
    app.run(debug=True)
