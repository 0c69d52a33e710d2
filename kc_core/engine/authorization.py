"""The authorization step: a route's roles and scopes, then the policy enforcer (if any),
which gets the request's real data for its claim information points."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from ..plugins import Adapter
from ..roles import has_role, has_scope
from .answers import _forbidden
from .context import JSON, MEMO_SIZE, Call
from .values import Requirement

_VERDICTS_PER_TOKEN = 64  # requirements judged for one token: about one per protected route


class EnforcerDecision(Protocol):
    """What an enforcer answers (:class:`kc_core.enforcer.Decision` is one)."""

    @property
    def allowed(self) -> bool: ...
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def redirect_to(self) -> str | None: ...


class Enforcer(Protocol):
    """A policy enforcer (:class:`kc_core.enforcer.PolicyEnforcer` is one)."""

    def enforce(
        self,
        method: str,
        path: str,
        token: str | None,
        claims: Mapping[str, Any] | None,
        *,
        params: Mapping[str, str | Sequence[str]] | None,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | None,
        remote_addr: str | None,
        secure: bool | None,
    ) -> EnforcerDecision:
        """Whether the request may proceed; the request data feed claim information points."""
        ...


class RequestHeaders(Mapping[str, str]):
    """A request's headers, read through its adapter only when asked for.

    Lookups are case-insensitive (``kc_request_header``); iteration lists the names the
    adapter reports (``kc_request_header_names``).
    """

    __slots__ = ("_adapter", "_request")

    def __init__(self, adapter: Adapter, request: Any) -> None:
        self._adapter = adapter
        self._request = request

    def __getitem__(self, name: str) -> str:
        value = self._adapter.header(self._request, name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        # Names whose value is missing or empty (a WSGI CONTENT_LENGTH of "") are left out,
        # as a lookup of them finds nothing.
        header, request = self._adapter.header, self._request
        return (n for n in self._adapter.header_names(request) if header(request, n) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _requirement_failure(
    claims: Mapping[str, Any], requirement: Requirement, client_id: str
) -> str | None:
    """Why ``claims`` do not meet ``requirement`` (roles, scopes), or ``None`` if they do."""
    if requirement.roles:
        granted = [has_role(claims, spec, client_id=client_id) for spec in requirement.roles]
        if not (any(granted) if requirement.any_role else all(granted)):
            return "the token lacks a required role"
    if requirement.scopes and not has_scope(claims, requirement.scopes):
        return "the token lacks a required scope"
    return None


class Authorizer:
    """Checks a requirement, then asks the enforcer; remembers verdicts per token."""

    __slots__ = ("_verdicts", "enforcer", "logout_path")

    def __init__(self, enforcer: Enforcer | None, logout_path: str | None = None) -> None:
        self.enforcer = enforcer
        self.logout_path = logout_path  # for the way out on a 403 page
        # token -> (its claims, {id(requirement): (requirement, why it failed or None)}): a
        # token calling several routes keeps each route's verdict (the requirement object
        # kept too, so its id is never another's).
        self._verdicts: dict[
            str, tuple[Mapping[str, Any], dict[int, tuple[Requirement, str | None]]]
        ] = {}

    def requirement_failure(
        self,
        token: str,
        claims: Mapping[str, Any],
        requirement: Requirement,
        client_id: str,
        *,
        remember: bool = True,
    ) -> str | None:
        """Why the token's claims miss ``requirement``'s roles or scopes, else ``None``.

        ``remember=False``: judged, not kept (a token on its first request, which may be
        its only one).
        """
        if not (requirement.roles or requirement.scopes):
            return None
        if not remember:
            return _requirement_failure(claims, requirement, client_id)
        # A token validated before yields the same claims object: judge it once per route.
        hit = self._verdicts.get(token)
        if hit is not None and hit[0] is claims:
            judged = hit[1].get(id(requirement))
            if judged is not None and judged[0] is requirement:
                return judged[1]
            kept = hit[1]
        else:
            kept = {}
            if len(self._verdicts) >= MEMO_SIZE:
                self._verdicts.clear()
            self._verdicts[token] = (claims, kept)
        reason = _requirement_failure(claims, requirement, client_id)
        if len(kept) >= _VERDICTS_PER_TOKEN:
            kept.clear()
        kept[id(requirement)] = (requirement, reason)
        return reason

    def passed(self, token: str, claims: Mapping[str, Any], requirement: Requirement) -> bool:
        """Whether :meth:`requirement_failure` kept a pass of ``requirement`` for ``token``
        with these very ``claims`` (a requirement without roles or scopes always passes)."""
        if not (requirement.roles or requirement.scopes):
            return True
        hit = self._verdicts.get(token)
        if hit is None or hit[0] is not claims:
            return False
        judged = hit[1].get(id(requirement))
        return judged is not None and judged[0] is requirement and judged[1] is None

    def validate_requirement(
        self,
        call: Call,
        claims: Mapping[str, Any],
        token: str,
        requirement: Requirement,
        *,
        api: bool,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any | None:
        """The refusal (403, or the enforcer's answer) for this request, or ``None``."""
        if requirement.roles or requirement.scopes:
            client_id = call.tenant.client.config.client_id
            reason = self.requirement_failure(token, claims, requirement, client_id)
            if reason is not None:
                return _forbidden(call, reason, api, headers, self.logout_path)
        if self.enforcer is None:
            return None
        return self.enforce(call, claims, token, headers)

    def enforce(
        self,
        call: Call,
        claims: Mapping[str, Any],
        token: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any | None:
        """The enforcer's refusal of this request, or ``None`` when it allows it."""
        assert self.enforcer is not None
        adapter, request = call.adapter, call.request
        decision = self.enforcer.enforce(
            adapter.method(request),
            adapter.path(request),
            token,
            claims,
            params=adapter.query(request),
            headers=RequestHeaders(adapter, request),
            cookies=adapter.cookies(request),
            remote_addr=adapter.client_address(request),
            secure=adapter.is_secure(request),
        )
        if decision.allowed:
            return None
        if decision.redirect_to is not None:
            return adapter.redirect(request, decision.redirect_to, list(headers))
        body = json.dumps({"error": "access_denied", "error_description": decision.reason})
        return adapter.response(
            request, decision.status, body.encode(), JSON, [*decision.headers.items(), *headers]
        )
