"""Hook implementations that every adapter's hook module would otherwise repeat.

:func:`response_hooks` gives ``kc_redirect`` and ``kc_response`` from one response builder,
:class:`ResponseTemplates` builds each repeated refusal once and copies it after (with
:func:`copied`);
:func:`request_attribute`, :func:`request_call`, :func:`environ_hooks` and
:func:`wsgi_header_hook` are one-line request hooks; :func:`first_values`,
:func:`urlencoded_values` and :func:`wsgi_environ_key` read request values;
:func:`start_response_adding` sends a WSGI middleware's headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast
from urllib.parse import parse_qsl

from ..plugins import hookimpl

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

_UNPREFIXED_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})

Build = Callable[[int, bytes, "str | None", Sequence[tuple[str, str]]], Any]
_Response = TypeVar("_Response")
_Template = TypeVar("_Template")


def response_hooks(build: Build) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``kc_redirect`` and ``kc_response`` for an adapter whose responses ``build`` makes.

    ``build(status, body, content_type, headers)`` is the framework's response, keeping every
    header (repeated ``Set-Cookie`` included). Example (in a hooks module)::

        kc_redirect, kc_response = response_hooks(build_response)
    """

    @hookimpl
    def kc_redirect(request: Any, location: str, headers: Sequence[tuple[str, str]]) -> Any:
        return build(302, b"", None, [("Location", location), *headers])

    @hookimpl
    def kc_response(
        request: Any,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]],
    ) -> Any:
        return build(status, body, content_type, headers)

    return kc_redirect, kc_response


class ResponseTemplates(Generic[_Response, _Template]):
    """A response builder that builds each repeated refusal once, then copies it.

    The engine answers most refusals with the same few responses (the no-token 401 of a
    realm, above all): same status, body and headers every time. Building a framework's
    response object costs several times copying one, so an answer with status 400 or more
    is kept as a template (``snapshot(response)``: the fields to copy it from, or ``None``
    when it has parts the adapter does not know how to copy), and the next identical answer
    is ``copy(template)``: a new response, its mutable parts its own. Answers with a cookie
    are built afresh (each is someone's); so are redirects (each login's is new).

    Example (in a hooks module)::

        build_response = ResponseTemplates(build, snapshot, copy)
        kc_redirect, kc_response = response_hooks(build_response)
    """

    __slots__ = ("_build", "_copy", "_kept", "_snapshot", "kept")

    def __init__(
        self,
        build: Callable[[int, bytes, str | None, Sequence[tuple[str, str]]], _Response],
        snapshot: Callable[[_Response], _Template | None],
        copy: Callable[[_Template], _Response],
        *,
        kept: int = 64,
    ) -> None:
        self._build, self._snapshot, self._copy = build, snapshot, copy
        #: How many distinct answers are kept at most (all are dropped when it is reached).
        self.kept = kept
        self._kept: dict[tuple[Any, ...], _Template] = {}

    def __call__(
        self, status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]]
    ) -> _Response:
        """The framework's response: a copy of the same answer's template, else built."""
        key = (status, body, content_type, tuple(headers))
        template = self._kept.get(key)
        if template is not None:
            return self._copy(template)
        response = self._build(status, body, content_type, headers)
        if status >= 400 and not any(name.lower() == "set-cookie" for name, _ in headers):
            template = self._snapshot(response)
            if template is not None:
                if len(self._kept) >= self.kept:
                    self._kept.clear()
                self._kept[key] = template
        return response


def copied(cls: type[_Response], fields: Mapping[str, Any], **own: Any) -> _Response:
    """A new ``cls`` object (no ``__init__`` run) with the instance ``fields`` of a
    template, then ``own``: the parts that must be the copy's own (lists, header stores).

    For :class:`ResponseTemplates`' ``copy``: a framework's response is several times
    cheaper to copy this way than to build.
    """
    made = cls.__new__(cls)
    made.__dict__ = {**fields, **own}  # one dict built: cheaper than two updates of vars()
    return made


# -- request values ---------------------------------------------------------------------------


def first_values(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The first value of each key: what the request hooks promise for a repeated key
    (multi-dicts such as WebOb's and Django's give the last)."""
    first: dict[str, str] = {}
    for key, value in items:
        first.setdefault(key, value)
    return first


@lru_cache(maxsize=256)
def wsgi_environ_key(name: str) -> str:
    """The WSGI environ key of header ``name`` (``HTTP_AUTHORIZATION``, ``CONTENT_TYPE``)."""
    key = name.upper().replace("-", "_")
    return key if key in _UNPREFIXED_HEADERS else f"HTTP_{key}"


def urlencoded_values(raw: bytes) -> dict[str, str]:
    """The first value of each field of a urlencoded query or body, read as UTF-8 with bad
    bytes replaced (for input a framework's own parser refuses)."""
    return first_values(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


# -- request hooks ----------------------------------------------------------------------------


def request_attribute(
    attribute: str, convert: Callable[[Any], Any] | None = None
) -> Callable[[Any], Any]:
    """A request hook answering ``request.<attribute>`` (through ``convert`` if given): the
    framework holds the answer.

    Example (in a hooks module): ``kc_request_method = request_attribute("method")``.
    """

    @hookimpl
    def read(request: Any) -> Any:
        value = getattr(request, attribute)
        return value if convert is None else convert(value)

    read.__name__ = read.__qualname__ = f"request_{attribute}"
    return read


def request_call(method: str) -> Callable[[Any], Any]:
    """A request hook answering ``request.<method>()``, as :func:`request_attribute` does
    for an attribute. Example: ``kc_request_is_secure = request_call("is_secure")``."""

    @hookimpl
    def call(request: Any) -> Any:
        return getattr(request, method)()

    call.__name__ = call.__qualname__ = f"request_{method}"
    return call


def environ_hooks(
    environ_of: Callable[[Any], Mapping[str, Any]],
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``kc_request_header``, ``kc_request_header_names`` and ``kc_request_client_address``
    for an adapter whose requests carry a WSGI environ (``environ_of(request)``).

    Headers are read straight from the environ (no header object built on the hot path);
    names are listed as frameworks spell them (``Content-Type``). Example (in a hooks module)::

        kc_request_header, kc_request_header_names, kc_request_client_address = environ_hooks(
            lambda request: request.environ
        )
    """

    @hookimpl
    def kc_request_header(request: Any, name: str) -> str | None:
        value: str | None = environ_of(request).get(wsgi_environ_key(name))
        return value

    @hookimpl
    def kc_request_header_names(request: Any) -> Iterable[str]:
        keys = environ_of(request)
        named = (key[5:] for key in keys if key.startswith("HTTP_"))
        unprefixed = (k for k in sorted(_UNPREFIXED_HEADERS) if k in keys)
        return [key.replace("_", "-").title() for key in (*named, *unprefixed)]

    @hookimpl
    def kc_request_client_address(request: Any) -> str | None:
        address: str | None = environ_of(request).get("REMOTE_ADDR")
        return address

    return kc_request_header, kc_request_header_names, kc_request_client_address


def wsgi_header_hook() -> Callable[[Any, str], str | None]:
    """``kc_request_header`` for requests over a WSGI ``environ`` (Werkzeug's, WebOb's).

    It reads ``request.environ`` directly (:func:`environ_hooks`): no header object is built
    on the hot path. Example (in a hooks module): ``kc_request_header = wsgi_header_hook()``.
    """
    return environ_hooks(_request_environ)[0]


_request_environ = attrgetter("environ")


# -- WSGI responses ---------------------------------------------------------------------------


def start_response_adding(
    headers: Sequence[tuple[str, str]], start_response: StartResponse
) -> StartResponse:
    """A WSGI ``start_response`` that also sends ``headers`` (refreshed token cookies)."""
    if not headers:
        return start_response

    def start(status: str, response_headers: list[tuple[str, str]], *args: Any) -> Any:
        return start_response(status, [*response_headers, *headers], *args)

    return cast("StartResponse", start)
