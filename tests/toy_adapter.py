"""The toy adapter the tests drive the engine with: a plain request class, no web framework.

:class:`ToyAdapter` implements every adapter hook for :class:`ToyRequest` and answers with
:class:`ToyResponse`, built as the docs tell adapter authors. Shared by ``tests/unit`` and
``tests/integration``: ``tests/conftest.py`` puts ``tests/`` on ``sys.path`` (pytest's default
``prepend`` import mode), so ``from toy_adapter import ...`` works in both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kc_core.plugins import hookimpl

__all__ = ["ToyAdapter", "ToyRequest", "ToyResponse"]


@dataclass
class ToyRequest:
    """A request as a framework would hand it over; ``rotations`` counts session rotations."""

    url: str = "http://app.test/private"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)
    rotations: int = 0
    script_name: str = ""  # where the app is mounted (a proxy's path prefix)


@dataclass(frozen=True)
class ToyResponse:
    """The answer the engine builds through :meth:`ToyAdapter.kc_response` and ``kc_redirect``."""

    status: int
    body: bytes = b""
    content_type: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or ``None``."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class ToyAdapter:
    """An adapter for :class:`ToyRequest`: every adapter hook, no web framework.

    Args:
        types: the request classes it claims (default: :class:`ToyRequest`).

    ``calls`` records each ``kc_request_path`` call, to tell which adapter was asked.
    """

    def __init__(self, *types: type) -> None:
        self.types: tuple[type, ...] = types or (ToyRequest,)
        self.calls: list[str] = []

    @hookimpl
    def kc_request_types(self) -> Sequence[type]:
        return self.types

    @hookimpl
    def kc_request_method(self, request: ToyRequest) -> str:
        return request.method

    @hookimpl
    def kc_request_url(self, request: ToyRequest) -> str:
        return request.url

    @hookimpl
    def kc_request_path(self, request: ToyRequest) -> str:
        self.calls.append("path")
        return urlsplit(request.url).path[len(request.script_name) :]

    @hookimpl
    def kc_request_query(self, request: ToyRequest) -> Mapping[str, str]:
        return dict(parse_qsl(urlsplit(request.url).query))

    @hookimpl
    def kc_request_header(self, request: ToyRequest, name: str) -> str | None:
        return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)

    @hookimpl
    def kc_request_header_names(self, request: ToyRequest) -> Iterable[str]:
        return list(request.headers)

    @hookimpl
    def kc_request_cookies(self, request: ToyRequest) -> Mapping[str, str]:
        return request.cookies

    @hookimpl
    def kc_request_form(self, request: ToyRequest) -> Mapping[str, str]:
        return request.form

    @hookimpl
    def kc_session(self, request: ToyRequest) -> MutableMapping[str, Any]:
        return request.session

    @hookimpl
    def kc_session_rotate(self, request: ToyRequest) -> None:
        request.rotations += 1

    @hookimpl
    def kc_redirect(
        self, request: ToyRequest, location: str, headers: Sequence[tuple[str, str]]
    ) -> ToyResponse:
        return ToyResponse(302, headers=(("Location", location), *headers))

    @hookimpl
    def kc_response(
        self,
        request: ToyRequest,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]],
    ) -> ToyResponse:
        return ToyResponse(status, body, content_type, tuple(headers))
