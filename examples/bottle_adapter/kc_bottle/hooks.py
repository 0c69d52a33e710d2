"""The kc hook implementations for Bottle: the module the ``kc_core`` entry point names.

Each hook translates one question of the engine into Bottle's request API, or builds a
Bottle response. The session is the one :class:`~kc_bottle.extension.KeycloakPlugin` opens
for every request it wraps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import bottle

from kc_core.plugins import hookimpl

from .extension import request_session, request_url


@hookimpl
def kc_request_types() -> Sequence[type]:
    return (bottle.BaseRequest,)


@hookimpl
def kc_request_method(request: bottle.BaseRequest) -> str:
    return request.method.upper()


@hookimpl
def kc_request_url(request: bottle.BaseRequest) -> str:
    return request_url(request)


@hookimpl
def kc_request_path(request: bottle.BaseRequest) -> str:
    return str(request.path)


@hookimpl
def kc_request_query(request: bottle.BaseRequest) -> Mapping[str, str]:
    try:
        return _first_values(request.query.decode())
    except UnicodeDecodeError:  # not UTF-8: Bottle's decode() raises, a 500
        return _lenient(request.query)


@hookimpl
def kc_request_header(request: bottle.BaseRequest, name: str) -> str | None:
    try:
        value = request.get_header(name)
    except UnicodeDecodeError:  # not UTF-8: the value as the server handed it over
        value = request.headers.raw(name)
    return None if value is None else str(value)


@hookimpl
def kc_request_header_names(request: bottle.BaseRequest) -> Iterable[str]:
    return [str(name) for name in request.headers]


@hookimpl
def kc_request_cookies(request: bottle.BaseRequest) -> Mapping[str, str]:
    return _first_values(request.cookies)


@hookimpl
def kc_request_form(request: bottle.BaseRequest) -> Mapping[str, str]:
    try:
        forms = request.forms
    except ValueError:  # Bottle 0.12 parses with cgi, which raises on a boundary-less multipart
        return {}
    try:
        return _first_values(forms.decode())
    except UnicodeDecodeError:
        return _lenient(forms)


@hookimpl
def kc_request_client_address(request: bottle.BaseRequest) -> str | None:
    address = request.remote_addr
    return None if address is None else str(address)


@hookimpl
def kc_request_is_secure(request: bottle.BaseRequest) -> bool:
    return urlsplit(request_url(request)).scheme == "https"


@hookimpl
def kc_session(request: bottle.BaseRequest) -> MutableMapping[str, Any]:
    return request_session(request).data


@hookimpl
def kc_session_rotate(request: bottle.BaseRequest) -> None:
    request_session(request).rotate()


@hookimpl
def kc_redirect(
    request: bottle.BaseRequest, location: str, headers: Sequence[tuple[str, str]]
) -> bottle.HTTPResponse:
    response = bottle.HTTPResponse(status=302)
    response.set_header("Location", location)
    for name, value in headers:
        response.add_header(name, value)
    return response


@hookimpl
def kc_response(
    request: bottle.BaseRequest,
    status: int,
    body: bytes,
    content_type: str,
    headers: Sequence[tuple[str, str]],
) -> bottle.HTTPResponse:
    response = bottle.HTTPResponse(body=body, status=status)
    response.content_type = content_type
    for name, value in headers:
        response.add_header(name, value)  # add, not set: Set-Cookie may repeat
    return response


def _first_values(values: Any) -> dict[str, str]:
    return {key: values.getall(key)[0] for key in values}


def _lenient(values: bottle.FormsDict) -> dict[str, str]:
    """``values`` (Latin-1 text as WSGI gives it) read as UTF-8, bad bytes replaced."""

    def text(native: str) -> str:
        return native.encode("latin-1", "replace").decode("utf-8", "replace")

    lenient: dict[str, str] = {}
    for key, value in values.allitems():
        lenient.setdefault(text(key), text(value))
    return lenient
