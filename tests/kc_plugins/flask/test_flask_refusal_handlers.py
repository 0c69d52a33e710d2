"""Which refusals go through Flask's error handlers: those the app or blueprint handles.

No Keycloak is needed: a protected API view requested without a token is refused before
any look-up. Without a handler the view returns kc's answer itself (no exception is
converted through a WSGI call); with one, for the status, a class above it, or in the
request's blueprint, the handler answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Blueprint, Flask
from kc_flask import Keycloak, bearer_required
from werkzeug.exceptions import HTTPException, Unauthorized

OFFLINE = {
    "KEYCLOAK_SERVER_URL": "http://127.0.0.1:9",
    "KEYCLOAK_REALM": "kc-test",
    "KEYCLOAK_CLIENT_ID": "kc-web",
    "SECRET_KEY": "test",
}


def _app() -> tuple[Flask, Blueprint]:
    app = Flask(__name__)
    app.config.update(OFFLINE)
    Keycloak(app)
    parts = Blueprint("parts", __name__)

    @app.get("/api")
    @bearer_required
    def api() -> str:
        return "ok"

    @parts.get("/parts")
    @bearer_required
    def part() -> str:
        return "ok"

    return app, parts


def _handler(error: HTTPException) -> Any:
    return {"handled": error.code}, error.code or 500


def test_without_a_handler_the_view_returns_kcs_401() -> None:
    app, parts = _app()
    app.register_blueprint(parts)
    seen: list[HTTPException] = []
    handle = app.handle_http_exception

    def recording(error: HTTPException) -> Any:
        seen.append(error)
        return handle(error)

    app.handle_http_exception = recording  # type: ignore[method-assign]
    answer = app.test_client().get("/api", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="kc-test"')
    assert answer.json is not None
    assert answer.json["error"] == "unauthorized"
    assert seen == []  # returned by the view: no exception went through Flask


@pytest.mark.parametrize("key", [401, Unauthorized, HTTPException, Exception])
def test_an_app_handler_for_the_status_or_a_class_above_it_answers(key: Any) -> None:
    app, parts = _app()
    app.register_error_handler(key, _handler)
    app.register_blueprint(parts)
    for path in ("/api", "/parts"):
        answer = app.test_client().get(path)
        assert (answer.status_code, answer.json) == (401, {"handled": 401})


def test_a_blueprint_handler_answers_only_in_its_blueprint() -> None:
    app, parts = _app()
    parts.register_error_handler(401, _handler)
    app.register_blueprint(parts)
    client = app.test_client()
    assert client.get("/parts").json == {"handled": 401}
    other = client.get("/api", headers={"Accept": "application/json"})
    assert other.status_code == 401
    assert other.json is not None
    assert other.json["error"] == "unauthorized"


def test_a_handler_for_another_status_does_not_take_the_401() -> None:
    app, _parts = _app()
    app.register_error_handler(403, _handler)
    answer = app.test_client().get("/api", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.json is not None
    assert answer.json["error"] == "unauthorized"
