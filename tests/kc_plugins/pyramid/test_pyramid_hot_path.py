"""The hooks' shortcuts on every request answer what WebOb's general paths answer."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import build_app
from kc_pyramid import plugin as hooks
from pyramid.request import Request
from pyramid.response import Response


@pytest.mark.parametrize("status", [200, 204, 205, 302, 304, 401, 403, 503])
@pytest.mark.parametrize(
    "headers",
    [[], [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], [("Content-Length", "999")]],
)
def test_responses_are_those_webob_builds(status: int, headers: list[tuple[str, str]]) -> None:
    body = b"" if status in (204, 205, 304) else b'{"error": "x"}'
    expected = Response(
        body, status=status, headerlist=[("Content-Type", "application/json"), *headers]
    )
    for _ in range(3):  # a repeated refusal is copied: each copy the app's own to change
        built = hooks.build_response(status, body, "application/json", headers)
        assert type(built) is Response
        assert (built.status, built.headerlist, built.body) == (
            expected.status,
            expected.headerlist,
            expected.body,
        )
        built.headers["X-Changed"] = "by the app"
        built.set_cookie("seen", "1")
        built.body = b"changed"
        built.status = 418


def test_the_path_hook_decodes_a_path_that_is_not_ascii() -> None:
    assert hooks.kc_request_path(Request.blank("/orders/7")) == "/orders/7"
    assert hooks.kc_request_path(Request.blank("/caf%C3%A9/menu")) == "/café/menu"


def test_a_bearer_only_app_without_a_session_factory_gets_an_empty_session(
    offline_settings: dict[str, Any],
) -> None:
    app = build_app({**offline_settings, "keycloak.bearer_only": "true"}, session=False)
    request = Request.blank("/")
    request.registry = app.registry
    first = hooks.kc_session(request)
    first["kept"] = True
    assert hooks.kc_session(request) == {}  # nothing kept between calls
