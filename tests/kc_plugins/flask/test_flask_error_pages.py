"""Refusals go through Flask's own error handlers; kc's default pages when there are none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import LoggedIn
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException

pytestmark = pytest.mark.integration


def with_handlers(app: Flask) -> Flask:
    @app.errorhandler(403)
    def forbidden(error: HTTPException) -> Any:
        return {"app": "forbidden", "kc_status": error.get_response().status_code}, 403

    @app.errorhandler(401)
    def unauthorized(error: HTTPException) -> Any:
        # kc's answer stays on the exception: a handler can keep its challenge.
        challenge = error.get_response().headers["WWW-Authenticate"]
        return {"app": "unauthorized"}, 401, {"WWW-Authenticate": challenge}

    return app


def test_errorhandler_403_replaces_kcs_page_for_a_browser_session(
    make_app: Callable[..., Flask], log_in: Callable[..., LoggedIn]
) -> None:
    client = with_handlers(make_app()).test_client()
    log_in(client, "/private", "bob")
    answer = client.get("/admin")
    assert answer.status_code == 403
    assert answer.json == {"app": "forbidden", "kc_status": 403}


def test_errorhandler_403_replaces_kcs_json_for_a_token_without_the_role(
    make_app: Callable[..., Flask], access_token: Callable[..., str]
) -> None:
    client = with_handlers(make_app()).test_client()
    answer = client.get("/api/data", headers={"Authorization": f"Bearer {access_token('carol')}"})
    assert answer.status_code == 403
    assert answer.json == {"app": "forbidden", "kc_status": 403}


def test_errorhandler_401_sees_kcs_challenge(make_app: Callable[..., Flask]) -> None:
    client = with_handlers(make_app()).test_client()
    answer = client.get("/api/data", headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401
    assert answer.json == {"app": "unauthorized"}
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="kc-test", error=')


def test_without_handlers_a_browser_gets_kcs_html_page_with_a_logout_button(
    make_app: Callable[..., Flask], log_in: Callable[..., LoggedIn]
) -> None:
    client: FlaskClient = make_app().test_client()
    log_in(client, "/private", "bob")
    answer = client.get("/admin", headers={"Accept": "text/html"})
    assert answer.status_code == 403
    assert answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "You do not have access to this page." in page
    assert "Reason: the token lacks a required role." in page
    assert '<form method="post" action="/kc/logout">' in page


def test_without_handlers_an_api_client_gets_kcs_json_and_challenge(
    make_app: Callable[..., Flask], access_token: Callable[..., str]
) -> None:
    client = make_app().test_client()
    answer = client.get("/api/data", headers={"Authorization": f"Bearer {access_token('carol')}"})
    assert answer.status_code == 403
    assert answer.json == {
        "error": "forbidden",
        "error_description": "the token lacks a required role",
    }
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    missing = client.get("/api/data")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'


def test_a_503_keeps_retry_after_and_reaches_an_errorhandler_503(
    offline_app: Callable[..., Flask], access_token: Callable[..., str]
) -> None:
    token = access_token("alice")  # a real token; the app cannot reach Keycloak's keys
    default = (
        offline_app().test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    )
    assert (default.status_code, default.headers["Retry-After"]) == (503, "5")
    app = offline_app()

    @app.errorhandler(503)
    def unavailable(error: HTTPException) -> Any:
        return (
            "down for a moment",
            503,
            {"Retry-After": error.get_response().headers["Retry-After"]},
        )

    handled = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert (handled.get_data(as_text=True), handled.headers["Retry-After"]) == (
        "down for a moment",
        "5",
    )
