"""The user side of an adapter: its user objects' role API and the request's user.

:class:`KeycloakUserBase` and :class:`AnonymousRoles` give ``has_role``, ``realm_roles`` and
``client_roles``; :func:`role_names` lists the roles as strings; :class:`UserMemo` keeps one
user per identity; :class:`RequestGuard` asks the engine once per request; :func:`set_changed`
updates a local user model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine.values import Guard, Requirement
from ..roles import client_roles, has_role, realm_roles

if TYPE_CHECKING:
    from ..engine import Engine

User = TypeVar("User")
_MEMO_SIZE = 4096  # users remembered, one per distinct identity (the engine's own memo size)


class AnonymousRoles:
    """The role API of a visitor who is not logged in: no roles."""

    __slots__ = ()

    @property
    def realm_roles(self) -> frozenset[str]:
        """No roles."""
        return frozenset()

    def client_roles(self, client_id: str) -> frozenset[str]:
        """No roles."""
        return frozenset()

    def has_role(self, spec: str) -> bool:
        """Always ``False``."""
        return False


class KeycloakUserBase:
    """A logged-in user over the identity kc built: its claims, roles and attributes.

    ``username``, ``email`` and ``name`` are the identity's, as text (``None`` if absent).

    ``kc_identity`` is that identity (:class:`kc_core.engine.Identity` unless a
    ``kc_build_identity`` hook returned another object); its other attributes are readable
    on the user too. A bare role in :meth:`has_role` is one of ``client_id``, by default of
    the client the token was issued to (its ``azp``).
    """

    def __init__(
        self, identity: Any, access_token: str | None, *, client_id: str | None = None
    ) -> None:
        self.kc_identity = identity
        self.access_token = access_token
        self._client_id = client_id

    @property
    def sub(self) -> str:
        """The subject: Keycloak's id of the user."""
        return str(getattr(self.kc_identity, "sub", "") or "")

    @property
    def claims(self) -> Mapping[str, Any]:
        """The validated access-token claims (read-only)."""
        claims: Mapping[str, Any] = getattr(self.kc_identity, "claims", {}) or {}
        return claims

    def identity_text(self, name: str) -> str | None:
        """The identity's attribute ``name`` as text, or ``None`` when it has none."""
        value = getattr(self.kc_identity, name, None)
        return None if value is None else str(value)

    @property
    def username(self) -> str | None:
        """``preferred_username``."""
        return self.identity_text("username")

    @property
    def email(self) -> str | None:
        """The e-mail address, if the token carries one."""
        return self.identity_text("email")

    @property
    def name(self) -> str | None:
        """The full name, if the token carries one."""
        return self.identity_text("name")

    @property
    def realm_roles(self) -> frozenset[str]:
        """Realm roles granted by the token."""
        return realm_roles(self.claims)

    def client_roles(self, client_id: str) -> frozenset[str]:
        """Roles of client ``client_id`` granted by the token."""
        return client_roles(self.claims, client_id)

    def has_role(self, spec: str) -> bool:
        """Whether the token grants ``spec`` (``realm:admin``, ``kc-api:reader``, ``reader``)."""
        owner = self._client_id
        if owner is None:
            owner = str(self.claims.get("azp") or "")
        return has_role(self.claims, spec, client_id=owner)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: the app's own identity attributes.
        if name.startswith("_") or name == "kc_identity":
            raise AttributeError(name)
        return getattr(self.kc_identity, name)

    def __repr__(self) -> str:
        username = self.identity_text("username")
        return f"{type(self).__name__}(sub={self.sub!r}, username={username!r})"


def role_names(claims: Mapping[str, Any], *, client_id: str | None = None) -> list[str]:
    """Every role of the token, written ``realm:NAME`` and ``CLIENT:NAME`` (sorted).

    For frameworks that check strings (Starlette's scopes, Pyramid's principals). The roles
    of ``client_id`` are listed bare too, right after their ``CLIENT:NAME`` form.
    """
    names = [f"realm:{role}" for role in sorted(realm_roles(claims))]
    access = claims.get("resource_access")
    for client in sorted(access) if isinstance(access, Mapping) else ():
        roles = sorted(client_roles(claims, client))
        names += [f"{client}:{role}" for role in roles]
        if client == client_id:
            names += roles
    return names


class UserMemo:
    """One user object per identity the engine built (it memoizes identities per token).

    Users are kept from their token's second request on, as the engine keeps identities: a
    token used once (perhaps its only request) leaves behind only its string among the
    tokens seen, and its user while it is the latest made.
    """

    def __init__(self) -> None:
        self._users: dict[int, tuple[Any, str | None, Any]] = {}
        self._seen: dict[str | None, None] = {}
        self._latest: tuple[Any, str | None, Any] = (None, None, None)

    def get(self, identity: Any, token: str | None, make: Callable[[], User]) -> User:
        """The user made for ``(identity, token)`` before, else ``make()``'s."""
        hit = self._users.get(id(identity))
        if hit is None:
            hit = self._latest
        if hit[0] is identity and hit[1] == token:
            user: User = hit[2]
            return user
        made = make()
        seen = self._seen
        if token in seen:
            if len(self._users) >= _MEMO_SIZE:
                self._users.clear()
            self._users[id(identity)] = (identity, token, made)
        else:
            if len(seen) >= _MEMO_SIZE:
                seen.clear()
            seen[token] = None
            self._latest = (identity, token, made)
        return made


# -- the guard of one request -----------------------------------------------------------------


class RequestGuard:
    """The engine's guard for one request, computed on first need, and the user it admits.

    :meth:`authenticate` asks ``Engine.authenticate`` once; a protected view's :meth:`admit`
    checks its requirement against that guard (``Engine.authorize``: no second validation);
    :meth:`user` is :meth:`find_user`'s, asked once. Adapters override :meth:`find_user`.
    """

    __slots__ = ("_user", "engine", "guard", "request")

    def __init__(self, engine: Engine, request: Any) -> None:
        self.engine = engine
        self.request = request
        #: ``None`` until someone asked who the user is (or a protected view admitted them).
        self.guard: Guard | None = None
        self._user: Any = None

    def authenticate(self) -> Guard:
        """The request's guard: identity, token and claims, or none for a visitor.

        A 503 answer (Keycloak needed and unreachable) leaves the visitor anonymous here;
        protected views answer the 503 themselves.
        """
        guard = self.guard
        if guard is None:
            guard = self.guard = self.engine.authenticate(self.request)
        return guard

    def admit(self, requirement: Requirement) -> Guard:
        """The engine's answer to a protected view: the guard known already checked against
        ``requirement`` (``Engine.authorize``), else ``Engine.protect``'s.

        An admitted user's guard is kept, for :meth:`user` and later views.
        """
        known = self.guard
        if known is None:
            guard = self.engine.protect(self.request, requirement)
        else:
            guard = self.engine.authorize(self.request, known, requirement)
        if guard.response is None and guard.identity is not None:
            if known is not None and known.identity is not guard.identity:
                self._user = None  # found for another identity (the token was refreshed)
            self.guard = guard
        return guard

    def identity(self) -> Any:
        """The identity of the request's user, or ``None`` for a visitor."""
        guard = self.authenticate()
        return None if guard.response is not None else guard.identity

    def token(self) -> str | None:
        """The access token of the request's user, or ``None`` for a visitor."""
        guard = self.authenticate()
        return None if guard.response is not None else guard.token

    def requirement_failure(self, requirement: Requirement) -> str | None:
        """Why the user's token fails ``requirement`` (roles, scopes), or ``None``: it meets
        it, or there is no token."""
        guard = self.authenticate()
        if guard.claims is None:
            return None
        client_id = self.engine.client_for(self.request).config.client_id
        token = guard.token or ""
        return self.engine.authorizer.requirement_failure(
            token, guard.claims, requirement, client_id
        )

    def user(self) -> Any:
        """The user of the request (:meth:`find_user`'s), found on first need."""
        user = self._user
        if user is None:
            user = self._user = self.find_user(self.authenticate())
        return user

    def find_user(self, guard: Guard) -> Any:
        """The user object of ``guard``; by default its identity (``None`` for a visitor)."""
        return None if guard.response is not None else guard.identity


# -- local user models ------------------------------------------------------------------------


def set_changed(target: object, values: Mapping[str, Any]) -> list[str]:
    """Set each of ``values`` that ``target`` has as an attribute and holds another value of;
    return the names set (for a model's ``save(update_fields=...)``)."""
    changed: list[str] = []
    for name, value in values.items():
        if hasattr(target, name) and getattr(target, name) != value:
            setattr(target, name, value)
            changed.append(name)
    return changed
