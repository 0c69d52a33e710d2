"""kc's adapter hooks for Django requests (entry point ``kc_core`` → ``django``).

Headers are read straight from ``request.META`` (no ``HttpHeaders`` object is built on the
hot path). The session is ``request.session`` from Django's ``SessionMiddleware``; the login
gives it a new key (``cycle_key``) because Django's session id lives on the server and would
otherwise survive the login (session fixation); the CSRF token rotates too. Importing this
module needs no configured settings: kc loads every installed adapter, Django project or not.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from contextlib import suppress
from http.cookies import CookieError, SimpleCookie
from logging import ERROR, WARNING
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.http.response import ResponseHeaders
from django.middleware.csrf import rotate_token
from django.utils.log import request_logger

from kc_core.adapters import (
    ResponseTemplates,
    copied,
    environ_hooks,
    request_attribute,
    request_call,
    response_hooks,
)
from kc_core.plugins import hookimpl

__all__ = ["add_headers", "build_response"]

ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)
Headers = Sequence[tuple[str, str]]

# An HttpResponse's instance fields (Django 4.2 to 5.2), the mutable ones replaced in each
# copy; a response with any other field (another Django) is built afresh every time.
_FIELDS = frozenset(
    {"headers", "cookies", "_resource_closers", "_container", "_charset", "_handler_class"}
    | {"closed", "status_code", "_reason_phrase"}
)


def add_headers(response: ResponseT, headers: Headers) -> ResponseT:
    """Add ``headers`` to ``response`` and return it, keeping every ``Set-Cookie`` (Django
    keeps one value per header name, and cookies in ``response.cookies``)."""
    for name, value in headers:
        if name.lower() == "set-cookie":
            # kc's own cookies always parse; never fail a response on one.
            with suppress(CookieError):
                response.cookies.load(value)
        else:
            response.headers[name] = value
    return response


def build_response(
    status: int, body: bytes, content_type: str | None, headers: Headers
) -> HttpResponse:
    """A Django response with kc's status, body and headers.

    A repeated refusal (the no-token 401) is built once, then copied, its mutable parts
    (headers, cookies, body, closers) its own (:class:`~kc_core.adapters.ResponseTemplates`).
    """
    response = _templates(status, body, content_type, headers)
    if status >= 400 and not request_logger.isEnabledFor(ERROR if status >= 500 else WARNING):
        # Django's handler would format its log line of this answer for a logger that drops
        # it (log_response checks this flag first): the same outcome, without that work.
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _build(status: int, body: bytes, content_type: str | None, headers: Headers) -> HttpResponse:
    return add_headers(HttpResponse(body, status=status, content_type=content_type), headers)


def _template(response: HttpResponse) -> dict[str, Any] | None:
    """The fields to copy ``response`` from, or ``None`` if it has any this module does not
    know to copy (a cookie, a field of another Django version)."""
    fields = dict(vars(response))
    headers = response.headers
    if fields.keys() != _FIELDS or response.cookies or vars(headers).keys() != {"_store"}:
        return None
    # Snapshots: the response itself goes on to the app, which may change it.
    fields["headers"] = headers._store.copy()
    fields["_container"] = tuple(response._container)  # type: ignore[attr-defined]
    return fields


def _copy(fields: dict[str, Any]) -> HttpResponse:
    return copied(
        HttpResponse,
        fields,
        headers=copied(ResponseHeaders, {"_store": fields["headers"].copy()}),
        cookies=SimpleCookie(),
        _resource_closers=[],
        _container=list(fields["_container"]),
    )


_templates = ResponseTemplates(_build, _template, _copy)


def _first_values(values: Any) -> dict[str, str]:
    # A QueryDict's item is its *last* value; the hooks promise the first.
    return {key: items[0] for key, items in values.lists() if items}


kc_request_header, kc_request_header_names, kc_request_client_address = environ_hooks(
    lambda request: request.META
)


@hookimpl
def kc_request_types() -> Sequence[type]:
    return (HttpRequest,)


@hookimpl
def kc_request_method(request: HttpRequest) -> str:
    return request.method or "GET"


# Honours ALLOWED_HOSTS, USE_X_FORWARDED_HOST and SECURE_PROXY_SSL_HEADER.
kc_request_url = request_call("build_absolute_uri")
# Within the app: the mount point (SCRIPT_NAME) is part of the URL, not of the path.
kc_request_path = request_attribute("path_info")
kc_request_query = request_attribute("GET", _first_values)
kc_request_cookies = request_attribute("COOKIES")
kc_request_form = request_attribute("POST", _first_values)
kc_request_is_secure = request_call("is_secure")


@hookimpl
def kc_session(request: HttpRequest) -> MutableMapping[str, Any]:
    # No SessionMiddleware (a bearer-only API): nothing to find, nothing kept.
    return cast("MutableMapping[str, Any]", getattr(request, "session", {}))


@hookimpl
def kc_session_rotate(request: HttpRequest) -> None:
    session = getattr(request, "session", None)
    if session is not None:
        session.cycle_key()
    # As django.contrib.auth.login does: a CSRF token seen before login is not reused.
    rotate_token(request)


@hookimpl
def kc_after_logout(request: Any, identity: Any) -> None:
    session = getattr(request, "session", None) if isinstance(request, HttpRequest) else None
    if session is not None and not session.keys():
        # An emptied session keeps its key until flushed: flush, so its cookie is deleted.
        session.flush()


@hookimpl
def kc_redirect(request: HttpRequest, location: str, headers: Headers) -> HttpResponseRedirect:
    return add_headers(HttpResponseRedirect(location), headers)


# The toolkit's kc_redirect is not used: Django's is an HttpResponseRedirect (with its .url).
kc_response = response_hooks(build_response)[1]
