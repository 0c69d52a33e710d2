"""The Pyramid 2 security policy: who is behind a request, and what they may do.

:class:`KeycloakSecurityPolicy` asks the engine once per request
(:meth:`kc_core.engine.Engine.authenticate`: a bearer token, else the session, refreshed
silently; or :meth:`~kc_core.engine.Engine.protect` when a permission is checked first)
and answers Pyramid's ``request.identity``, ``request.authenticated_userid`` and
``request.has_permission`` (so ``permission=`` on views) from that one answer. A permission
is a kc requirement:

- ``authenticated``: any logged-in user (session or bearer token);
- ``role:realm:admin``, ``role:kc-api:reader``, ``role:reader`` (a role of this client);
- ``scope:email``: a scope the access token carries;
- any name given a :class:`~kc_core.engine.Requirement` (``config.add_keycloak_permission``).

Other permissions are looked up in the context's ``__acl__`` (Pyramid's ACLs) with the
principals of :func:`principals_of`. A refusal carries the engine's answer, which the
forbidden view sends: a login redirect for browsers, JSON 401/403 for APIs, 503 when
Keycloak is needed and unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyramid.authorization import ACLHelper, Authenticated, Everyone  # type: ignore[import-untyped]
from pyramid.security import Allowed, Denied  # type: ignore[import-untyped]

from kc_core.adapters import requirement_for, role_names, wsgi_environ_key
from kc_core.engine import Engine, Guard, Requirement
from kc_core.errors import LoginError

__all__ = [
    "ENGINE_KEY",
    "GUARD_KEY",
    "KeycloakDenied",
    "KeycloakSecurityPolicy",
    "engine_of",
    "guard_of",
    "principals_of",
    "requirement_for",
]

#: Registry key of the app's engine.
ENGINE_KEY = "kc.engine"
#: WSGI environ key of the request's :class:`~kc_core.engine.Guard` (the engine's answer).
GUARD_KEY = "kc.guard"
_AUTHORIZATION = wsgi_environ_key("authorization")


def engine_of(request: Any) -> Engine:
    """The engine of the app serving ``request``.

    Raises:
        RuntimeError: the app did not ``config.include("kc_pyramid")``.
    """
    engine = request.registry.get(ENGINE_KEY)
    if not isinstance(engine, Engine):
        raise RuntimeError('kc-pyramid is not set up: call config.include("kc_pyramid")')
    return engine


def guard_of(request: Any) -> Guard:
    """The engine's answer on who is behind ``request``, asked once per request.

    ``Guard.identity`` is the user or ``None``; ``Guard.response`` is set only when Keycloak
    was needed and is unreachable (503). Token cookies refreshed meanwhile (cookie mode) are
    added to the app's response.
    """
    guard: Guard | None = request.environ.get(GUARD_KEY)
    if guard is None:
        guard = request.environ[GUARD_KEY] = engine_of(request).authenticate(request)
        send_headers(request, guard.headers)
    return guard


def send_headers(request: Any, headers: Sequence[tuple[str, str]]) -> None:
    """Add ``headers`` to whatever response the request gets (once, never twice)."""

    def add(request: Any, response: Any) -> None:
        present = response.headerlist
        for header in headers:
            if header not in present:  # the engine's own answers carry them already
                present.append(header)

    if headers:
        request.add_response_callback(add)


def admit(request: Any, requirement: Requirement) -> Any | None:
    """The engine's refusal of ``request`` under ``requirement``, or ``None`` to proceed.

    The request's user is asked of the engine once: a request nobody asked about yet gets
    :meth:`~kc_core.engine.Engine.protect` (who and whether in one pass), one already asked
    about gets :meth:`~kc_core.engine.Engine.authorize` against that answer.
    """
    environ = request.environ
    guard: Guard | None = environ.get(GUARD_KEY)
    if guard is None:
        engine = engine_of(request)
        authorization = environ.get(_AUTHORIZATION)
        if authorization:
            # A bearer token seen before on a route it passed: its kept guard, no hook.
            kept = engine.admits(authorization, requirement)
            if kept is not None:
                environ[GUARD_KEY] = kept
                return None
        decided = engine.protect(request, requirement)
        if decided.response is None and decided.claims is not None:
            # An admitted user is the request's user; a refusal (or an exempt path's
            # guard, which names nobody) leaves request.identity to authenticate.
            environ[GUARD_KEY] = decided
        if decided.headers:
            send_headers(request, decided.headers)
        return decided.response
    if guard.response is not None:
        return guard.response  # Keycloak unreachable: asking again would wait again
    decided = engine_of(request).authorize(request, guard, requirement)
    if decided is not guard:
        send_headers(request, decided.headers)
    return decided.response


def principals_of(guard: Guard, client_id: str) -> list[str]:
    """Pyramid principals of a request's user, for ACLs.

    ``Everyone``; then, for a user, ``Authenticated``, ``user:<sub>``, ``role:realm:<role>``
    for each realm role, ``role:<client>:<role>`` for each client role and ``role:<role>``
    for each role of this client (``client_id``).
    """
    claims = guard.claims
    if guard.identity is None or claims is None:
        return [Everyone]
    roles = [f"role:{name}" for name in role_names(claims, client_id=client_id)]
    return [Everyone, Authenticated, f"user:{claims.get('sub', '')}", *roles]


class KeycloakDenied(Denied):  # type: ignore[misc]
    """A refused permission, carrying the engine's answer for the forbidden view."""

    response: Any

    def __new__(cls, message: str, response: Any) -> KeycloakDenied:
        # Pyramid's results are ints (falsy when denied) built in __new__.
        denied: KeycloakDenied = super().__new__(cls, "%s", message)
        denied.response = response
        return denied


class KeycloakSecurityPolicy:
    """Pyramid's ``ISecurityPolicy`` on kc's engine (set by ``config.include("kc_pyramid")``).

    Args:
        permissions: names for requirements, e.g.
            ``{"orders.write": Requirement(roles=("kc-api:writer",))}``; permission strings
            (``role:...``, ``scope:...``, ``authenticated``) need no entry.

    ``remember`` is not supported (users log in through Keycloak at ``/kc/login``);
    ``forget`` ends the session in this app only (Keycloak's session stays; post to
    ``/kc/logout`` to end both).
    """

    def __init__(self, permissions: Mapping[str, Requirement] | None = None) -> None:
        self._requirements: dict[str, Requirement | None] = dict(permissions or {})
        self._granted: dict[str, Any] = {}

    def add_permission(self, name: str, requirement: Requirement) -> None:
        """Name a requirement: ``permission=name`` on a view then requires it."""
        self._requirements[name] = requirement

    def requirement(self, permission: str) -> Requirement | None:
        """The requirement behind ``permission`` (the same object each time), or ``None``."""
        if permission not in self._requirements:
            found = requirement_for(permission) if isinstance(permission, str) else None
            self._requirements[permission] = found
        return self._requirements[permission]

    def identity(self, request: Any) -> Any:
        """The user behind ``request`` (a :class:`kc_core.engine.Identity`), or ``None``."""
        return guard_of(request).identity

    def authenticated_userid(self, request: Any) -> str | None:
        """The user's Keycloak id (the token's ``sub``), or ``None`` for a visitor."""
        guard = guard_of(request)
        if guard.identity is None or guard.claims is None:
            return None
        sub = guard.claims.get("sub")
        return str(sub) if sub else None

    @staticmethod
    def denial(permission: str, refused: Any) -> KeycloakDenied:
        """The :class:`KeycloakDenied` of ``permission``, carrying the engine's ``refused``."""
        unreachable = refused.status_code == 503
        reason = "Keycloak is unreachable" if unreachable else f"{permission!r} refused"
        return KeycloakDenied(reason, refused)

    def permits(self, request: Any, context: Any, permission: str) -> Any:
        """``Allowed``, or a :class:`KeycloakDenied` carrying the engine's refusal."""
        requirement = self.requirement(permission)
        if requirement is not None:
            refused = admit(request, requirement)
            if refused is None:
                granted = self._granted.get(permission)
                if granted is None:  # one result per permission, not one per request
                    granted = self._granted[permission] = Allowed(
                        "%s granted by Keycloak", permission
                    )
                return granted
            return self.denial(permission, refused)
        if getattr(context, "__acl__", None) is None:
            reason = f"no rule grants {permission!r}"
        else:
            principals = self.effective_principals(request)
            verdict = ACLHelper().permits(context, principals, permission)
            if verdict:
                return verdict
            reason = f"the ACL refuses {permission!r}"
        refused = engine_of(request).refuse(request, guard_of(request), reason)
        return KeycloakDenied(reason, refused)

    def effective_principals(self, request: Any) -> list[str]:
        """The request's principals (see :func:`principals_of`)."""
        client_id = engine_of(request).client_for(request).config.client_id
        return principals_of(guard_of(request), client_id)

    def remember(self, request: Any, userid: Any, **kw: Any) -> Iterable[tuple[str, str]]:
        """Refused: users log in through Keycloak (redirect them to ``/kc/login``).

        Raises:
            LoginError: always, naming the route that logs a user in.
        """
        raise LoginError(
            "kc-pyramid users log in through Keycloak: redirect to "
            "request.route_url('keycloak.login', _query={'next': request.path_qs})"
        )

    def forget(self, request: Any, **kw: Any) -> list[tuple[str, str]]:
        """End the session in this app only; returns the headers to send (cookie mode).

        Raises:
            TokenStoreUnavailable: the token store cannot be reached.
        """
        headers = engine_of(request).end_session(request)
        request.environ.pop(GUARD_KEY, None)  # the next identity() is a visitor's
        return headers
