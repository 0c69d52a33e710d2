"""The engine's value types: who the user is, what a route needs, what the engine answered.

This module imports nothing of the engine (nor of :mod:`kc_core.plugins`), so the plugin
layer can build identities without reaching back into the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..identity import Identity

__all__ = ["Guard", "Identity", "Requirement", "safe_return_url"]

# Printable ASCII punctuation but space and backslash: kept when a return URL is percent-encoded.
_URL_PUNCTUATION = "!#$%&'()*+,-./:;=?@[]^_`{|}~\"<>"


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a protected route needs.

    ``roles`` are role specs (``realm:admin``, ``api:editor``, or a bare role of this
    client); all are needed unless ``any_role``. ``scopes`` must all be in the token's
    ``scope``. ``api`` forces JSON 401/403 answers (``True``) or login redirects
    (``False``); by default the request decides (Accept, X-Requested-With, Authorization).
    ``bearer_only`` refuses session (cookie) authentication.
    """

    roles: tuple[str, ...] = ()
    any_role: bool = False
    scopes: tuple[str, ...] = ()
    api: bool | None = None
    bearer_only: bool = False

    @classmethod
    def for_roles(
        cls, roles: Iterable[str], *, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> Requirement:
        """Every role in ``roles`` (or one, with ``any_role``): what ``roles_required`` means.

        Raises:
            ValueError: ``roles`` is empty (a role check that checks nothing is a mistake).
        """
        needed = tuple(roles)
        if not needed:
            raise ValueError("a role requirement needs at least one role")
        return cls(roles=needed, any_role=any_role, scopes=tuple(scopes))

    @classmethod
    def for_bearer(
        cls, roles: Iterable[str] = (), *, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> Requirement:
        """A JSON API: a bearer token only (no session), JSON answers, optional roles/scopes."""
        return cls(tuple(roles), any_role, tuple(scopes), api=True, bearer_only=True)


@dataclass(slots=True)  # not frozen: built on every request, keep it cheap
class Guard:
    """The outcome of :meth:`Engine.protect` and :meth:`Engine.authenticate`.

    The request may proceed when ``response`` is ``None``; ``identity`` is then the user
    (``None`` on an exempt path) and ``token`` their access token. Otherwise ``response`` is
    the framework response (401, 403, 503 or a login redirect) to send instead.

    ``headers`` (``Set-Cookie`` after a silent refresh in cookie mode) must be added to
    whatever response the app sends; they are already part of ``response``.
    """

    identity: Any = None
    response: Any = None
    token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: The validated access-token claims behind ``identity`` (for :meth:`Engine.authorize`).
    claims: Mapping[str, Any] | None = None
    #: Whether the token came in an ``Authorization: Bearer`` header (not the session).
    bearer: bool = False

    @property
    def allowed(self) -> bool:
        """Whether the request may proceed."""
        return self.response is None


def safe_return_url(target: str | None, request_url: str) -> str | None:
    """``target`` if it stays on this site (a path, or this exact origin), else ``None``.

    Refuses other hosts, protocol-relative ``//host`` and backslash tricks, and control
    characters, so a login's ``next`` can never send the user elsewhere (no open redirect).
    """
    if not target or any(ord(c) < 32 or c == "\\" or c == "\x7f" for c in target):
        return None
    if not target.isascii():
        # A Location header is ASCII: percent-encode the rest (a lone surrogate has no UTF-8).
        try:
            target = quote(target, safe=_URL_PUNCTUATION)
        except UnicodeEncodeError:
            return None
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc:
        if target.startswith("/") and not target.startswith("//"):
            return target
        return None
    here = urlsplit(request_url)
    if (parts.scheme, parts.netloc) == (here.scheme, here.netloc):
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    return None
