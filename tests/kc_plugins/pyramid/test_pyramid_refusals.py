"""kc's refusals without Pyramid's exception view, and an app's forbidden view still first.

While kc's forbidden view is the one Pyramid would call, ``@bearer_required`` and
``permission=`` return the engine's 401 as it is (no ``HTTPForbidden`` raised, so
``request.exception`` stays unset); an app's own forbidden or exception view that applies
gets the refusal raised, as before. Apps point at a closed port: no request needs Keycloak.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kc_pyramid import bearer_required
from kc_pyramid.views import forbidden_view, kc_answers_forbidden
from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.httpexceptions import HTTPException, HTTPForbidden
from pyramid.request import Request
from pyramid.response import Response

PATHS = {"decorator": "/api", "permission": "/perm"}
JSON = {"Accept": "application/json"}
NO_TOKEN_401 = (
    "401 Unauthorized",
    [
        ("Content-Type", "application/json"),
        ("WWW-Authenticate", 'Bearer realm="kc-test"'),
        ("Cache-Control", "no-store"),
        ("Content-Length", "73"),
    ],
    b'{"error": "unauthorized", "error_description": "authentication required"}',
)


def _ok(request: Any) -> Any:
    return Response("ok")


def make_app(settings: dict[str, Any], *, own: Callable[[Configurator], None] | None = None) -> Any:
    """A bearer-only app with ``/api`` (``@bearer_required``) and ``/perm`` (``permission=``);
    ``own`` adds the app's own views after the include. ``app.exceptions`` lists, per
    response, the exception an exception view answered (``None``: none was raised)."""
    exceptions: list[Any] = []
    with Configurator(settings={**settings, "keycloak.bearer_only": "true"}) as config:
        config.include("kc_pyramid")
        config.add_route("api", "/api")
        config.add_view(bearer_required(roles=["reader"])(_ok), route_name="api")
        config.add_route("perm", "/perm")
        config.add_view(_ok, route_name="perm", permission="role:reader")
        config.add_subscriber(lambda event: exceptions.append(event.request.exception), NewResponse)
        if own is not None:
            own(config)
        app = config.make_wsgi_app()
    app.exceptions = exceptions
    return app


def answer(app: Any, path: str, headers: dict[str, str] | None = None) -> tuple[Any, Any]:
    """The response to ``GET path`` and the exception an exception view answered, if any."""
    response = Request.blank(path, headers=headers or JSON).get_response(app)
    return response, app.exceptions[-1]


def the_apps_page(exc: Any, request: Any) -> Any:
    kc_answer = exc.result.response  # kc's answer stays on the exception
    return Response(f"the app's page, kc said {kc_answer.status_code}", status=403)


def as_sent(response: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    return response.status, list(response.headerlist), response.body


@pytest.mark.parametrize("form", PATHS)
def test_the_401_is_returned_without_raising_when_kcs_forbidden_view_would_answer(
    offline_settings: dict[str, Any], form: str
) -> None:
    response, exception = answer(make_app(offline_settings), PATHS[form])
    assert as_sent(response) == NO_TOKEN_401
    assert exception is None


@pytest.mark.parametrize("form", PATHS)
def test_the_fast_401_is_the_one_pyramids_exception_view_path_gives(
    offline_settings: dict[str, Any], form: str
) -> None:
    def kc_view_behind_the_apps(config: Configurator) -> None:
        # The app's own forbidden view (so the refusal is raised) answering as kc's does.
        config.add_forbidden_view(lambda exc, request: forbidden_view(exc, request))

    raised, exception = answer(make_app(offline_settings, own=kc_view_behind_the_apps), PATHS[form])
    assert isinstance(exception, HTTPForbidden)
    returned, _ = answer(make_app(offline_settings), PATHS[form])
    assert as_sent(returned) == as_sent(raised) == NO_TOKEN_401


@pytest.mark.parametrize("form", PATHS)
def test_an_apps_forbidden_view_still_answers_refusals(
    offline_settings: dict[str, Any], form: str
) -> None:
    app = make_app(offline_settings, own=lambda config: config.add_forbidden_view(the_apps_page))
    response, exception = answer(app, PATHS[form])
    assert (response.status_code, response.text) == (403, "the app's page, kc said 401")
    assert isinstance(exception, HTTPForbidden)


def test_an_apps_forbidden_view_for_one_route_answers_that_route_only(
    offline_settings: dict[str, Any],
) -> None:
    def own(config: Configurator) -> None:
        config.add_forbidden_view(the_apps_page, route_name="perm")

    app = make_app(offline_settings, own=own)
    assert answer(app, "/perm")[0].text == "the app's page, kc said 401"
    response, exception = answer(app, "/api")
    assert (as_sent(response), exception) == (NO_TOKEN_401, None)


def test_an_apps_exception_view_for_a_base_class_on_a_route_comes_first(
    offline_settings: dict[str, Any],
) -> None:
    # Pyramid looks for the route's views before the app-wide ones: HTTPException on /api
    # beats kc's HTTPForbidden view, which still answers /perm.
    def own(config: Configurator) -> None:
        config.add_exception_view(the_apps_page, context=HTTPException, route_name="api")

    app = make_app(offline_settings, own=own)
    assert answer(app, "/api")[0].text == "the app's page, kc said 401"
    response, exception = answer(app, "/perm")
    assert (as_sent(response), exception) == (NO_TOKEN_401, None)


def test_an_apps_forbidden_view_with_a_predicate_answers_what_it_matches(
    offline_settings: dict[str, Any],
) -> None:
    def own(config: Configurator) -> None:
        config.add_forbidden_view(the_apps_page, header="X-App-Page")

    app = make_app(offline_settings, own=own)
    for path in PATHS.values():
        matched, _ = answer(app, path, {**JSON, "X-App-Page": "1"})
        assert matched.text == "the app's page, kc said 401", path
        other, exception = answer(app, path)
        assert as_sent(other) == NO_TOKEN_401, path
        assert isinstance(exception, HTTPForbidden), path  # Pyramid chose among the views


def test_kc_answers_forbidden_until_the_app_has_a_forbidden_view(
    offline_settings: dict[str, Any],
) -> None:
    request = Request.blank("/")
    request.registry = make_app(offline_settings).registry
    assert kc_answers_forbidden(request)
    request.registry = make_app(
        offline_settings, own=lambda config: config.add_forbidden_view(the_apps_page)
    ).registry
    assert not kc_answers_forbidden(request)


def test_debug_authorization_keeps_pyramids_permission_check(
    offline_settings: dict[str, Any],
) -> None:
    app = make_app({**offline_settings, "pyramid.debug_authorization": "true"})
    response, exception = answer(app, "/perm")
    assert as_sent(response) == NO_TOKEN_401
    assert isinstance(exception, HTTPForbidden)  # Pyramid's check, which logs, raised it
