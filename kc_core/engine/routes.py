"""Route rules: requests the protection lets through by method and path
(:attr:`~.settings.EngineSettings.exempt_routes`), and CORS preflights."""

from __future__ import annotations

from typing import Any

from ..plugins import Adapter
from .settings import EngineSettings


class RouteRules:
    """The engine's exemptions that need the request's method, read only when rules exist."""

    __slots__ = ("_preflight", "rules")

    def __init__(self, settings: EngineSettings) -> None:
        #: ``(method or None for any, path, whether path is a prefix)``, in the settings' order.
        self.rules: tuple[tuple[str | None, str, bool], ...] = tuple(
            _rule(text) for text in settings.exempt_routes
        )
        self._preflight = settings.pass_cors_preflight

    def exempt(self, adapter: Adapter, request: Any, path: str) -> bool:
        """Whether a rule lets ``request`` (at ``path``) through unprotected."""
        if not self.rules:
            return False
        method = adapter.method(request).upper()
        for rule_method, rule_path, prefix in self.rules:
            if rule_method is not None and rule_method != method:
                continue
            if path.startswith(rule_path) if prefix else path == rule_path:
                return True
        return False

    def preflight(self, adapter: Adapter, request: Any) -> bool:
        """Whether ``request`` is a CORS preflight to let through (browsers send it without
        credentials, so only a request without ``Authorization`` is asked)."""
        return (
            self._preflight
            and adapter.method(request) == "OPTIONS"
            and adapter.header(request, "access-control-request-method") is not None
        )


def _rule(text: str) -> tuple[str | None, str, bool]:
    method, _, path = text.partition(" ")
    return (None if method == "*" else method, path, path.endswith("/"))
