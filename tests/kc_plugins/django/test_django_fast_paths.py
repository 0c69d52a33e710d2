"""What kc-django's cheap request path must keep: the 401's bytes, Django's log of it,
``request.user`` for an admitted token, and requests freed as soon as they end.

Requests go through a ``WSGIHandler`` with a prepared environ, as a server calls it (Django's
test ``Client`` keeps references of its own to every request it makes).
"""

from __future__ import annotations

import gc
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import RequestFactory
from django.test.utils import override_settings
from django.utils.functional import SimpleLazyObject
from kc_django import bearer_required
from kc_django.middleware import KeycloakMiddleware
from kc_django.plugin import build_response
from kc_django.users import KeycloakUser

NO_TOKEN_BODY = b'{"error": "unauthorized", "error_description": "authentication required"}'
KEYCLOAK_MIDDLEWARE = "kc_django.middleware.KeycloakMiddleware"


def environ(path: str, token: str | None = None) -> dict[str, Any]:
    """A GET environ for ``path`` from an API client, with a bearer token if given."""
    values: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if token is not None:
        values["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return values


Served = tuple[str, dict[str, str], bytes]
WITH, WITHOUT = "with KeycloakMiddleware", "without middleware"


@pytest.fixture
def serve() -> Callable[..., Served]:
    """``serve(path, token=None, middleware=WITH)``: status, headers and body of one
    request, served and closed as a WSGI server does."""
    handlers: dict[str, WSGIHandler] = {}

    def call(path: str, token: str | None = None, middleware: str = WITH) -> Served:
        handler = handlers.get(middleware)
        if handler is None:  # built once: a handler's set-up is not part of a request
            with override_settings(MIDDLEWARE=[KEYCLOAK_MIDDLEWARE] if middleware == WITH else []):
                handler = handlers[middleware] = WSGIHandler()
        answers: list[tuple[str, list[tuple[str, str]]]] = []
        body = handler(environ(path, token), lambda s, h, *a: answers.append((s, h)))
        try:
            content = b"".join(body)
        finally:
            body.close()
        (status, headers), *_ = answers
        return status, dict(headers), content

    return call


@pytest.mark.parametrize("middleware", [WITH, WITHOUT])
def test_the_no_token_401_keeps_its_bytes_and_headers(
    offline_project: None, serve: Callable[..., Served], middleware: str
) -> None:
    for _ in range(2):  # the second answer is built like the first
        status, headers, body = serve("/api/data", middleware=middleware)
        assert status == "401 Unauthorized"
        assert body == NO_TOKEN_BODY
        assert headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
        assert headers["Cache-Control"] == "no-store"
        assert headers["Content-Type"] == "application/json"


def test_django_still_logs_the_401_when_its_logger_takes_warnings(
    offline_project: None, serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="django.request")
    serve("/api/data")
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in logged] == ["Unauthorized: /api/data"]
    assert getattr(logged[0], "status_code", None) == 401


def test_a_401_the_logger_drops_is_answered_the_same(
    offline_project: None, serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="django.request")
    assert serve("/api/data")[::2] == ("401 Unauthorized", NO_TOKEN_BODY)
    assert not [r for r in caplog.records if r.name == "django.request"]


@pytest.fixture
def no_cycles() -> Iterator[Callable[[], int]]:
    """``cycles()``: objects found only by the garbage collector since the fixture began
    (it is off meanwhile, so none are freed unseen)."""
    gc.collect()
    gc.disable()
    try:
        yield gc.collect
    finally:
        gc.enable()


def test_a_refused_request_is_freed_when_it_ends(
    offline_project: None, serve: Callable[..., Served], no_cycles: Callable[[], int]
) -> None:
    for middleware in (WITH, WITHOUT):  # once first: what a first request builds is kept
        serve("/api/data", middleware=middleware)
    # Django closes its caches as every request ends; with asgiref < 3.13 (Python 3.10) each
    # cache alias not yet opened in this thread costs an exception whose traceback is a
    # reference cycle of Django's own. Opened once, as any app using its cache has it.
    caches["default"]
    no_cycles()
    for middleware in (WITH, WITHOUT):
        assert serve("/api/data", middleware=middleware)[0] == "401 Unauthorized"
        assert serve("/public", middleware=middleware)[0] == "200 OK"
    assert no_cycles() == 0


@pytest.mark.integration
def test_an_admitted_request_sets_request_user_and_is_freed_when_it_ends(
    project: Callable[..., None],
    serve: Callable[..., Served],
    access_token: Callable[[str], str],
    no_cycles: Callable[[], int],
) -> None:
    project()
    token = access_token("bob")
    for middleware in (WITH, WITHOUT):
        assert serve("/api/data", token, middleware=middleware)[2] == (
            b'{"data": [1, 2, 3], "reader": "bob"}'
        )
    no_cycles()
    for path, middleware in (("/api/data", WITH), ("/api/data", WITHOUT), ("/whoami", WITH)):
        assert serve(path, token, middleware=middleware)[0] == "200 OK"
    assert no_cycles() == 0


@pytest.mark.integration
def test_request_user_is_a_lazy_keycloak_user_while_its_request_lives(
    project: Callable[..., None], access_token: Callable[[str], str]
) -> None:
    project()
    token = access_token("bob")
    seen: dict[str, Any] = {}

    @bearer_required(roles=["kc-api:reader"])
    def streamed(request: HttpRequest) -> StreamingHttpResponse:
        seen["user"] = request.user

        def lines() -> Iterator[bytes]:
            # Read after the middleware has returned: the request is still alive.
            user: Any = request.user
            yield user.get_username().encode()

        return StreamingHttpResponse(lines())

    request = RequestFactory().get("/streamed", HTTP_AUTHORIZATION=f"Bearer {token}")
    response: Any = KeycloakMiddleware(streamed)(request)
    assert isinstance(seen["user"], SimpleLazyObject)
    assert b"".join(response.streaming_content) == b"bob"
    assert isinstance(request.user, KeycloakUser)
    assert request.user.has_role("kc-api:reader")


def test_a_lazy_user_first_read_after_its_request_ended_says_so(offline_project: None) -> None:
    request = RequestFactory().get("/public")
    kept: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        kept["user"] = request.user
        return HttpResponse("ok")

    KeycloakMiddleware(view)(request)
    del request
    gc.collect()
    with pytest.raises(RuntimeError, match="after its request had ended"):
        kept["user"].get_username()


def test_each_answer_is_a_response_of_its_own() -> None:
    headers = [("WWW-Authenticate", 'Bearer realm="r"'), ("Cache-Control", "no-store")]
    for _ in range(3):  # the first is built, the next ones copied: each changed by the app
        answer = build_response(401, NO_TOKEN_BODY, "application/json", headers)
        assert type(answer) is HttpResponse
        assert (answer.status_code, answer.reason_phrase, answer.content) == (
            401,
            "Unauthorized",
            NO_TOKEN_BODY,
        )
        assert list(answer.items()) == [("Content-Type", "application/json"), *headers]
        assert not answer.cookies
        assert not answer._resource_closers
        answer["X-Changed"] = "by the app"
        answer.set_cookie("seen", "1")
        answer.write(b" and more")
        answer._resource_closers.append(lambda: None)
    with_cookie = [*headers, ("Set-Cookie", "kc=1; Path=/")]
    for _ in range(2):
        answer = build_response(401, NO_TOKEN_BODY, "application/json", with_cookie)
        assert answer.cookies["kc"].value == "1"
