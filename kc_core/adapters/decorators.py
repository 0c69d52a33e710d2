"""The decorator trio: ``login_required``, ``roles_required`` and ``bearer_required``.

All three come from an adapter's one ``protect(requirement)`` (:class:`ViewDecorators`,
:func:`view_decorators`); :class:`RequirementShorthands` gives the same three as values
(FastAPI dependencies), and :func:`requirement_for` reads permission strings
(``role:reader``) as requirements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar, overload

from ..engine.values import Requirement
from ..roles import has_role

View = TypeVar("View", bound=Callable[..., Any])


class ViewDecorator(Protocol):
    """A decorator returning the view it protects with the view's own type."""

    def __call__(self, view: View, /) -> View: ...


class ViewDecorators:
    """``login_required``, ``roles_required`` and ``bearer_required`` of one adapter.

    ``protect(requirement)`` is the adapter's decorator for any
    :class:`~kc_core.engine.Requirement`; the three are shorthands for it. A refused request
    gets the engine's answer: a login redirect for browsers, a JSON 401 (with
    ``WWW-Authenticate``) or 403 for API clients, a 503 when Keycloak is unreachable.
    Example (an adapter's decorators module)::

        login_required = ViewDecorators(protect).login_required
    """

    def __init__(self, protect: Callable[[Requirement], ViewDecorator]) -> None:
        self.protect = protect

    @overload
    def login_required(self, view: View) -> View: ...
    @overload
    def login_required(self, view: None = None, *, scopes: Iterable[str] = ()) -> ViewDecorator: ...
    def login_required(
        self, view: View | None = None, *, scopes: Iterable[str] = ()
    ) -> View | ViewDecorator:
        """Require a logged-in user (session or bearer token).

        Browsers go to Keycloak's login page and come back to the page they asked for; API
        clients get 401. Use bare (``@login_required``) or with ``scopes=``.
        """
        decorate = self.protect(Requirement(scopes=tuple(scopes)))
        return decorate if view is None else decorate(view)

    def roles_required(
        self, *roles: str, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> ViewDecorator:
        """Require every role (or one of them, with ``any_role``); a user without it gets 403.

        A role is ``realm:NAME``, ``CLIENT:NAME`` or a bare ``NAME`` of this client, e.g.
        ``@roles_required("realm:admin")``.
        """
        return self.protect(Requirement.for_roles(roles, any_role=any_role, scopes=scopes))

    @overload
    def bearer_required(self, view: View) -> View: ...
    @overload
    def bearer_required(
        self,
        view: None = None,
        *,
        roles: Iterable[str] = (),
        any_role: bool = False,
        scopes: Iterable[str] = (),
    ) -> ViewDecorator: ...
    def bearer_required(
        self,
        view: View | None = None,
        *,
        roles: Iterable[str] = (),
        any_role: bool = False,
        scopes: Iterable[str] = (),
    ) -> View | ViewDecorator:
        """Protect a JSON API: only an ``Authorization: Bearer`` token is accepted.

        Answers are JSON with a ``WWW-Authenticate`` challenge: 401 without a valid token,
        403 without the roles or scopes. Example: ``@bearer_required(roles=["kc-api:reader"])``.
        """
        decorate = self.protect(Requirement.for_bearer(roles, any_role=any_role, scopes=scopes))
        return decorate if view is None else decorate(view)


class LoginRequired(Protocol):
    """The type of ``login_required``: bare, or called with ``scopes``."""

    @overload
    def __call__(self, view: View, /) -> View: ...
    @overload
    def __call__(self, view: None = None, /, *, scopes: Iterable[str] = ()) -> ViewDecorator: ...


class RolesRequired(Protocol):
    """The type of ``roles_required``."""

    def __call__(
        self, *roles: str, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> ViewDecorator: ...


class BearerRequired(Protocol):
    """The type of ``bearer_required``: bare, or called with ``roles``, ``any_role``, ``scopes``."""

    @overload
    def __call__(self, view: View, /) -> View: ...
    @overload
    def __call__(
        self,
        view: None = None,
        /,
        *,
        roles: Iterable[str] = (),
        any_role: bool = False,
        scopes: Iterable[str] = (),
    ) -> ViewDecorator: ...


def view_decorators(
    protect: Callable[[Requirement], ViewDecorator],
) -> tuple[LoginRequired, RolesRequired, BearerRequired]:
    """An adapter's ``login_required``, ``roles_required`` and ``bearer_required``::

    login_required, roles_required, bearer_required = view_decorators(protect)
    """
    decorators = ViewDecorators(protect)
    return decorators.login_required, decorators.roles_required, decorators.bearer_required


# -- shorthands for dependencies --------------------------------------------------------------

Protection = TypeVar("Protection")


class RequirementShorthands(Generic[Protection]):
    """``require_login``, ``require_roles`` and ``require_bearer`` over one ``require``.

    ``require(requirement)`` makes what enforces a :class:`~kc_core.engine.Requirement` (a
    FastAPI dependency, say); the three build the requirement as :class:`ViewDecorators`
    does. Example (an adapter's dependencies)::

        require_login = RequirementShorthands(require).require_login
    """

    def __init__(self, require: Callable[[Requirement], Protection]) -> None:
        self._require = require

    def require_login(self, *, scopes: Iterable[str] = ()) -> Protection:
        """A logged-in user (session or bearer token), as ``login_required``."""
        return self._require(Requirement(scopes=tuple(scopes)))

    def require_roles(
        self, *roles: str, any_role: bool = False, scopes: Iterable[str] = ()
    ) -> Protection:
        """Every role (or one, with ``any_role``), as ``roles_required``; else 403."""
        return self._require(Requirement.for_roles(roles, any_role=any_role, scopes=scopes))

    def require_bearer(
        self, *, roles: Iterable[str] = (), any_role: bool = False, scopes: Iterable[str] = ()
    ) -> Protection:
        """A bearer token only (JSON 401/403 with ``WWW-Authenticate``), as ``bearer_required``."""
        return self._require(Requirement.for_bearer(roles, any_role=any_role, scopes=scopes))


# -- permission strings -----------------------------------------------------------------------


def requirement_for(permission: str) -> Requirement | None:
    """The requirement a permission string names, or ``None`` if it names none.

    For frameworks that name permissions with strings (Pyramid's ``permission=``):
    ``authenticated`` is any logged-in user (session or bearer token); ``role:realm:admin``,
    ``role:kc-api:reader`` and ``role:reader`` (a role of this client) a role;
    ``scope:email`` a scope the access token carries.

    Raises:
        ValueError: ``role:`` or ``scope:`` with nothing after it, or a malformed role spec.
    """
    if permission == "authenticated":
        return Requirement()
    kind, colon, what = permission.partition(":")
    if not colon or kind not in ("role", "scope"):
        return None
    if not what:
        raise ValueError(f"not a kc permission: {permission!r}")
    if kind == "scope":
        return Requirement(scopes=(what,))
    has_role({}, what, client_id="")  # a malformed role spec fails here, not later
    return Requirement(roles=(what,))
