"""The framework-neutral auth engine: login, callback, logout, back-channel logout,
silent refresh and protection, written once for every adapter.

An adapter turns its framework's request into hook calls (see :mod:`kc_core.hookspecs`);
the engine never imports a framework. Endpoints return the framework's own response
objects, built by the adapter's ``kc_response`` / ``kc_redirect`` hooks.

Network calls happen only on the login round trip, on logout, on a silent refresh and on
the first sight of a signing key; protecting a request with a token seen before costs a
few dictionary lookups. :class:`AsyncEngine` runs the calls that may touch the network in
a worker thread so ASGI apps never block their event loop.

The parts (see docs/architecture.md): :mod:`.values` (identity, requirement, guard),
:mod:`.settings`, :mod:`.context` (tenants, the per-request :class:`~.context.Call`),
:mod:`.answers`, :mod:`.sessions` (where tokens live), :mod:`.refresh`, :mod:`.bearer`,
:mod:`.online` (opt-in introspection and ended-session checks),
:mod:`.authorization`, :mod:`.protection`, :mod:`.login`, :mod:`.logout`, :mod:`.core` (the
facade) and :mod:`.async_engine`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .settings import REFRESH_LINGER, EngineSettings
from .values import Guard, Identity, Requirement, safe_return_url

if TYPE_CHECKING:
    from .async_engine import AsyncEngine
    from .authorization import Enforcer, EnforcerDecision, RequestHeaders
    from .bearer import BearerVerifier, JwtVerifier
    from .core import Engine
    from .online import OnlineVerifier
    from .sessions import CookieSessions, ServerSessions, SessionBackend

__all__ = [
    "AsyncEngine",
    "BearerVerifier",
    "CookieSessions",
    "Enforcer",
    "EnforcerDecision",
    "Engine",
    "EngineSettings",
    "Guard",
    "Identity",
    "JwtVerifier",
    "OnlineVerifier",
    "RequestHeaders",
    "Requirement",
    "ServerSessions",
    "SessionBackend",
    "safe_return_url",
]

_REFRESH_LINGER = REFRESH_LINGER  # the conformance kit waits this long

# The value types load with the package; the rest on first use, so that kc_core.plugins can
# import Identity from .values while the engine's parts import kc_core.plugins (no cycle).
_LAZY = {
    "AsyncEngine": ("async_engine", "AsyncEngine"),
    "BearerVerifier": ("bearer", "BearerVerifier"),
    "CookieSessions": ("sessions", "CookieSessions"),
    "Engine": ("core", "Engine"),
    "Enforcer": ("authorization", "Enforcer"),
    "EnforcerDecision": ("authorization", "EnforcerDecision"),
    "JwtVerifier": ("bearer", "JwtVerifier"),
    "OnlineVerifier": ("online", "OnlineVerifier"),
    "RequestHeaders": ("authorization", "RequestHeaders"),
    "ServerSessions": ("sessions", "ServerSessions"),
    "SessionBackend": ("sessions", "SessionBackend"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value
