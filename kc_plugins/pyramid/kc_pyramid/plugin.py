"""kc's adapter hooks for Pyramid requests (entry point ``kc_core`` → ``pyramid``).

Headers are read straight from the WSGI environ (no WebOb header object on the hot path).
The session is ``request.session``, so the app needs a session factory; a bearer-only app
(``keycloak.bearer_only = true``) may go without one. Responses are Pyramid responses.
Every ``kc_*`` function here is a hook implementation: kc takes them unmarked, as pytest does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from pyramid.exceptions import ConfigurationError  # type: ignore[import-untyped]
from pyramid.httpexceptions import HTTPBadRequest  # type: ignore[import-untyped]
from pyramid.interfaces import ISessionFactory  # type: ignore[import-untyped]
from pyramid.request import Request  # type: ignore[import-untyped]
from pyramid.response import Response  # type: ignore[import-untyped]

from kc_core.adapters import (
    ResponseTemplates,
    copied,
    first_values,
    response_hooks,
    urlencoded_values,
    wsgi_header_hook,
)

__all__ = ["SESSIONLESS_KEY", "SESSION_FACTORY_KEY", "TRUSTED_HOSTS_KEY", "build_response"]

#: Registry key set by ``includeme`` when the app may run without a session (bearer-only).
SESSIONLESS_KEY = "kc.sessionless"
#: Registry key set at commit: whether the app has a session factory (not looked up per call).
SESSION_FACTORY_KEY = "kc.session_factory"
#: Registry key of the ``keycloak.trusted_hosts`` setting (``None``: every Host).
TRUSTED_HOSTS_KEY = "kc.trusted_hosts"
#: Statuses WebOb sends without a body (nor a Content-Length).
_BODILESS = frozenset((204, 205, 304))
_NO_SESSION = (
    "kc-pyramid keeps logins in request.session, and no session factory is registered: "
    "call config.set_session_factory(...) with a server-side or encrypted session (a login "
    "keeps its PKCE verifier there: a cookie that is only signed shows it)"
)


def _build(
    status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]]
) -> Any:
    listed = [("Content-Type", content_type), *headers] if content_type else [*headers]
    if (
        status < 200
        or status in _BODILESS
        or any(n.lower() == "content-length" for n, _ in headers)
    ):
        return Response(body, status=status, headerlist=listed)
    # The Content-Length WebOb would set, set here: given a body, WebOb copies the header
    # list looking for another, on every refusal.
    listed.append(("Content-Length", str(len(body))))
    return Response(app_iter=[body], status=status, headerlist=listed)


# A Response's instance fields (WebOb 1.8), the mutable ones replaced in each copy; a
# response with any other field (another WebOb) is built afresh every time.
_FIELDS = frozenset({"_status", "_headers", "_headerlist", "conditional_response", "_app_iter"})


def _snapshot(response: Response) -> dict[str, Any] | None:
    """The fields to copy ``response`` from, or ``None`` if it has any this module does not
    know to copy."""
    fields = dict(vars(response))
    if (
        type(response) is not Response
        or fields.keys() != _FIELDS
        or fields["_headers"] is not None
        or not isinstance(fields["_app_iter"], list)
    ):
        return None
    # Snapshots: the response itself goes on to the app, which may change it.
    fields["_headerlist"] = list(fields["_headerlist"])
    fields["_app_iter"] = tuple(fields["_app_iter"])
    return fields


def _copy(fields: dict[str, Any]) -> Response:
    return copied(
        Response,
        fields,
        _headerlist=fields["_headerlist"].copy(),
        _app_iter=list(fields["_app_iter"]),
    )


#: A Pyramid response keeping every header, repeated names (``Set-Cookie``) included; a
#: repeated refusal (the no-token 401) built once, then copied
#: (:class:`~kc_core.adapters.ResponseTemplates`).
build_response = ResponseTemplates(_build, _snapshot, _copy)


def kc_request_types() -> Sequence[type]:
    return (Request,)


def kc_request_method(request: Any) -> str:
    return str(request.environ.get("REQUEST_METHOD", "GET"))  # WebOb's request.method


def kc_request_url(request: Any) -> str:
    trusted = request.registry.get(TRUSTED_HOSTS_KEY)
    if trusted is not None and str(request.host).lower() not in trusted:
        # Pyramid's own 400 (its exception view renders it); never a URL from this Host.
        raise HTTPBadRequest("untrusted Host header")
    return str(request.url)


def kc_request_path(request: Any) -> str:
    # The path the app routes on (PATH_INFO), as Flask's request.path. An ASCII path reads
    # the same decoded: WebOb's decoding is spared on every request.
    path = request.environ.get("PATH_INFO")
    if isinstance(path, str) and path.isascii():
        return path
    return str(request.path_info)


def kc_request_query(request: Any) -> Mapping[str, str]:
    try:
        return first_values(request.GET.items())
    except UnicodeDecodeError:  # WebOb refuses a query string that is not UTF-8: a 500
        query = request.environ.get("QUERY_STRING", "")
        return urlencoded_values(query.encode("latin-1", "replace"))


kc_request_header = wsgi_header_hook()


def kc_request_header_names(request: Any) -> Iterable[str]:
    return list(request.headers.keys())


def kc_request_cookies(request: Any) -> Mapping[str, str]:
    cookies: Mapping[str, str] = request.cookies
    return cookies


def kc_request_form(request: Any) -> Mapping[str, str]:
    try:
        return first_values(request.POST.items())
    except (UnicodeDecodeError, ValueError, DeprecationWarning):
        # WebOb raises on a body that is not UTF-8, a multipart form without a boundary, or
        # another declared charset (a DeprecationWarning, raised): no form, so a 400.
        return {}


def kc_request_client_address(request: Any) -> str | None:
    address: str | None = request.remote_addr
    return address


def kc_request_is_secure(request: Any) -> bool:
    return bool(request.scheme == "https")


def kc_session(request: Any) -> MutableMapping[str, Any]:
    registry = request.registry
    present = registry.get(SESSION_FACTORY_KEY)
    if present is None:  # before the commit that records it
        present = registry.queryUtility(ISessionFactory) is not None
    if not present:  # request.session would raise
        if registry.get(SESSIONLESS_KEY):
            return {}  # a bearer-only app: nothing to find, nothing kept
        raise ConfigurationError(_NO_SESSION)
    session: MutableMapping[str, Any] = request.session
    return session


def kc_session_rotate(request: Any) -> None:
    # Pyramid's documented way to prevent fixation: invalidate, then keep using the session
    # (a new one, with a new id for server-side sessions), carrying the data over.
    session = kc_session(request)
    invalidate = getattr(session, "invalidate", None)
    if callable(invalidate):
        data = dict(session)
        invalidate()
        session.update(data)


kc_redirect, kc_response = response_hooks(build_response)
