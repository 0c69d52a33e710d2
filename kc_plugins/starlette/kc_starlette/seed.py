"""Starlette's application with the ``@app.route`` decorator, which Starlette 1.0 removed.

The earlier library's Starlette programs register pages with ``@app.route(path)``. On
Starlette 0.x they run unchanged; on 1.x, change one import::

    from kc_starlette.seed import Starlette  # was: from starlette.applications import Starlette
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette as _Starlette

__all__ = ["Starlette"]

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


class Starlette(_Starlette):
    """``starlette.applications.Starlette``, with ``route()`` on every Starlette version."""

    def route(  # type: ignore[override,unused-ignore]  # 0.x has it (deprecated)
        self,
        path: str,
        methods: Sequence[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> Callable[[_Endpoint], _Endpoint]:
        """Register the decorated function as the page at ``path`` (``add_route``)."""

        def register(endpoint: _Endpoint) -> _Endpoint:
            self.add_route(
                path,
                endpoint,
                methods=list(methods) if methods is not None else None,
                name=name,
                include_in_schema=include_in_schema,
            )
            return endpoint

        return register
