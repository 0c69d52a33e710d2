"""The adapter toolkit: what every framework adapter shares, written once.

An adapter (``kc_plugins/<framework>``) implements the hooks of :mod:`kc_core.hookspecs` and
wraps the engine in its framework's idioms. What is not framework glue lives here:

- :class:`ViewDecorators`: ``login_required``, ``roles_required`` and ``bearer_required``
  from the adapter's one ``protect(requirement)``, each keeping the view's exact type, and
  :class:`RequirementShorthands`, the same three for dependencies (``require_login`` ...);
- :class:`KeycloakUserBase` and :class:`AnonymousRoles`: the user objects' role API
  (``has_role("realm:admin")``, ``realm_roles``, ``client_roles(id)``), and
  :func:`role_names` for frameworks that speak in scopes or principals;
- :class:`UserMemo`: one user object per identity the engine built;
- :class:`SettingsReader`: the client and engine settings from the framework's own
  configuration, a :class:`~kc_core.ConfigError` naming the key as the framework spells it;
- :func:`adapter_registration`, :func:`response_hooks`, :func:`environ_hooks`,
  :func:`wsgi_header_hook`, :func:`request_attribute`, :func:`first_values`,
  :func:`urlencoded_values` and :func:`wsgi_environ_key`: what every hook module repeats;
- :func:`start_response_adding`: a WSGI middleware's way to send the guard's headers;
- :func:`requirement_for`: permission strings (``role:reader``) as requirements;
  :func:`endpoint_view`: a named view per endpoint; :data:`SETTING_NAMES`: every setting;
- :data:`ENDPOINTS`: the engine's four endpoints, for an adapter's routes;
- :class:`SeedAction` and :func:`needs_login`: what the seed middlewares (every page needs a
  login) decide for a request, and :func:`seed_guard` for an async one;
- :func:`read_form_body`: the urlencoded body of an endpoint's POST, for async adapters;
- :class:`BuiltOnce`: an engine built from the settings on first use, rebuilt after a reset;
- :class:`RequestGuard`: the engine's guard of one request, asked once, and its user;
- :func:`request_call` (a hook answering ``request.<method>()``), :func:`set_changed` (a
  model's fields set where they differ), :func:`configured_engine` (an engine setting) and
  :func:`single_client_config` (an engine's one client).

It imports no framework and nothing of the engine but its value types.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, overload
from urllib.parse import parse_qsl

from .config import Config
from .engine.settings import EngineSettings
from .engine.values import Guard, Requirement
from .errors import ConfigError, KeycloakError
from .plugins import Plugins, hookimpl
from .roles import client_roles, has_role, realm_roles

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

    from .engine import AsyncEngine, Engine
    from .seed import SeedMiddleware

__all__ = [
    "ENDPOINTS",
    "MAX_FORM_BYTES",
    "SEED_ARGUMENTS",
    "SETTING_NAMES",
    "AnonymousRoles",
    "BearerRequired",
    "BuiltOnce",
    "Endpoint",
    "KeycloakUserBase",
    "LoginRequired",
    "RequestGuard",
    "RequirementShorthands",
    "RolesRequired",
    "SeedAction",
    "SettingsReader",
    "UserMemo",
    "ViewDecorator",
    "ViewDecorators",
    "adapter_engine",
    "adapter_registration",
    "configured_engine",
    "endpoint_view",
    "environ_hooks",
    "first_values",
    "needs_login",
    "read_form_body",
    "request_attribute",
    "request_call",
    "requirement_for",
    "response_hooks",
    "role_names",
    "seed_guard",
    "set_changed",
    "settings_file",
    "single_client_config",
    "start_response_adding",
    "urlencoded_values",
    "view_decorators",
    "wsgi_environ_key",
    "wsgi_header_hook",
]

View = TypeVar("View", bound=Callable[..., Any])
User = TypeVar("User")
_UNPREFIXED_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_MEMO_SIZE = 4096  # users remembered, one per distinct identity (the engine's own memo size)
_ENGINE_FIELDS = tuple(f.name for f in fields(EngineSettings) if f.name != "scopes")


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


# -- users ------------------------------------------------------------------------------------


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
    """One user object per identity the engine built (it memoizes identities per token)."""

    def __init__(self) -> None:
        self._users: dict[int, tuple[Any, str | None, Any]] = {}

    def get(self, identity: Any, token: str | None, make: Callable[[], User]) -> User:
        """The user made for ``(identity, token)`` before, else ``make()``'s, kept."""
        hit = self._users.get(id(identity))
        if hit is not None and hit[0] is identity and hit[1] == token:
            user: User = hit[2]
            return user
        made = make()
        if len(self._users) >= _MEMO_SIZE:
            self._users.clear()
        self._users[id(identity)] = (identity, token, made)
        return made


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsReader:
    """kc's settings from a framework's configuration, with the framework's naming.

    Args:
        prefix: the prefix of kc's keys (``KEYCLOAK_``, Pyramid's ``keycloak.``).
        client_hint: what to do about a client setting, from its field name (``realm``),
            e.g. ``"in Flask, set app.config['KEYCLOAK_REALM']"``; it ends the message.
        engine_hint: the same for an engine setting (default: ``client_hint``).
        upper: whether the keys are upper case (``KEYCLOAK_REALM``, not ``keycloak.realm``).
        invalid_key: when set, a ``TypeError`` of the settings (an unknown key in
            ``keycloak.json``, a wrong Python type) is a ``ConfigError`` of this key too.
    """

    prefix: str
    client_hint: Callable[[str], str]
    engine_hint: Callable[[str], str] | None = None
    upper: bool = True
    invalid_key: str | None = None

    def client_config(
        self, values: Mapping[str, Any], *, settings_file: str | Path | None = None
    ) -> Config:
        """The client :class:`~kc_core.Config` from the keys, then ``keycloak.json``.

        Raises:
            ConfigError: a required setting is missing or invalid; the message names the key.
        """
        try:
            return Config.from_mapping(
                values, key_prefix=self.prefix, upper=self.upper, settings_file=settings_file
            )
        except ConfigError as exc:
            raise ConfigError(f"{exc} - {self.client_hint(exc.key)}", key=exc.key) from exc
        except TypeError as exc:
            if self.invalid_key is None:
                raise
            raise ConfigError(
                f"Keycloak settings are invalid: {exc}", key=self.invalid_key
            ) from exc

    def engine_settings(self, values: Mapping[str, Any], **overrides: Any) -> EngineSettings:
        """The engine's :class:`~kc_core.engine.EngineSettings` from the keys.

        Raises:
            ConfigError: a value cannot be read as its setting's type, or the prefix is invalid.
        """
        prefix = self.prefix
        if not self.upper:  # EngineSettings reads KEYCLOAK_FIELD keys
            given = (name for name in _ENGINE_FIELDS if prefix + name in values)
            values = {"KEYCLOAK_" + name.upper(): values[prefix + name] for name in given}
            prefix = "KEYCLOAK_"
        hint = self.engine_hint or self.client_hint
        try:
            return EngineSettings.from_mapping(values, key_prefix=prefix, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"{exc} - {hint(exc.key)}", key=exc.key) from exc


def settings_file(named: Any, root: str | Path | None) -> Path | None:
    """The Keycloak adapter file: ``named`` (relative to ``root``), else ``root/keycloak.json``.

    ``None`` leaves the choice to :class:`~kc_core.Config` (``./keycloak.json``).
    """
    if named:
        path = Path(named)
        return path if path.is_absolute() or root is None else Path(root, path)
    if root is not None:
        candidate = Path(root, "keycloak.json")
        if candidate.is_file():
            return candidate
    return None


# -- hook modules -----------------------------------------------------------------------------


def adapter_registration(hooks: ModuleType, name: str) -> Callable[[Plugins], Plugins]:
    """``with_<framework>_adapter``: a plugin manager with the adapter's ``hooks`` registered.

    The app's own framework is then served without any entry point being loaded
    (see :meth:`kc_core.plugins.Plugins.ensure_registered`).
    """

    def with_adapter(plugins: Plugins) -> Plugins:
        return plugins.ensure_registered(hooks, name=name)

    with_adapter.__name__ = with_adapter.__qualname__ = f"with_{name}_adapter"
    with_adapter.__doc__ = f"``plugins`` with the {name} adapter registered."
    return with_adapter


def adapter_engine(
    with_adapter: Callable[[Plugins], Plugins],
    config: Callable[[], Any],
    settings: Callable[[], EngineSettings],
    *,
    engine: Engine | None = None,
    plugins: Plugins | None = None,
    **options: Any,
) -> Engine:
    """The engine an adapter serves: ``engine`` as given, else one built for the app.

    ``with_adapter`` registers the adapter's hooks (on ``engine``'s plugins too).
    ``config()`` and ``settings()`` read the app's configuration, only when no ``engine``
    is given; ``options`` (``store``, ``enforcer``) are :class:`~kc_core.engine.Engine`'s.

    Raises:
        ConfigError: a required setting is missing or invalid.
    """
    if engine is not None:
        with_adapter(engine.plugins)
        return engine
    from .engine import Engine

    plugins = with_adapter(plugins or Plugins())
    return Engine(config(), plugins=plugins, settings=settings(), **options)


Build = Callable[[int, bytes, "str | None", Sequence[tuple[str, str]]], Any]


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


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of the engine's endpoints, as an adapter mounts it under the prefix (``/kc``)."""

    #: The route name (``login``) and the :class:`~kc_core.engine.Engine` method serving it.
    name: str
    #: The path below the prefix (``backchannel-logout``).
    path: str
    #: Whether browsers only ever GET it (login and callback).
    get_only: bool
    #: Whether Keycloak posts to it server to server: no CSRF token can come with it (the
    #: engine validates the logout token instead).
    server_to_server: bool = False

    def serve(self, engine: Engine, request: Any) -> Any:
        """The engine's answer to ``request`` at this endpoint."""
        return getattr(engine, self.name)(request)


ENDPOINTS = (
    Endpoint("login", "login", get_only=True),
    Endpoint("callback", "callback", get_only=True),
    Endpoint("logout", "logout", get_only=False),
    Endpoint("backchannel_logout", "backchannel-logout", get_only=False, server_to_server=True),
)
"""The engine's endpoints: ``login``, ``callback``, ``logout``, ``backchannel_logout``."""


# -- seed middlewares -------------------------------------------------------------------------


def needs_login(engine: Engine, guard: Guard) -> bool:
    """Whether the engine refused a request only for want of a login, sending it to log in.

    That is its login redirect (to ``{prefix}/login``), answered to a browser without a
    session: not an API client's 401, a 403, a 503 or the login-loop breaker's page. The
    seed middlewares then send the browser straight to Keycloak instead.
    """
    response = guard.response
    if response is None or guard.identity is not None:
        return False
    # Every framework's response headers read case-insensitively with .get().
    read = getattr(getattr(response, "headers", None), "get", None)
    location = read("Location") if callable(read) else None
    if not isinstance(location, str):
        return False
    # The app's mount point (a proxy's path prefix) may come before the login path.
    path, query = location.partition("?")[::2]
    return bool(query) and path.startswith("/") and path.endswith(engine.settings.login_path)


SEED_ARGUMENTS = """The seed middlewares' arguments, the same in every adapter.

callback_url: where Keycloak sends the browser back; its path must end with ``/callback``
    (``/kc/callback``) and its directory also serves ``/login``, ``/logout`` and
    ``/backchannel-logout``. Only the path is used: the host is the request's.
redirect_uri: where the user lands after logging in.
logout_uri: a path that logs the user out (by GET or POST), then reaches the app.
exempt_paths: paths served without a login (a trailing ``/`` exempts a subtree).
client: a :class:`~kc_core.Config` or :class:`~kc_core.Client` instead of the app's settings.
store, plugins: as for :class:`~kc_core.engine.Engine`.
"""


class SeedAction(Enum):
    """What a seed middleware does with a request that is not one of the engine's endpoints."""

    #: Pass it to the app without a login (an exempt path; the logout page of a visitor).
    PASS = "pass"
    #: End the session here and in Keycloak (the logout page of a logged-in user).
    LOGOUT = "logout"
    #: Require a login (``Engine.protect``; see :func:`needs_login` for a refusal).
    PROTECT = "protect"


# -- flask: request attribute hooks and WSGI glue


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


def wsgi_header_hook() -> Callable[[Any, str], str | None]:
    """``kc_request_header`` for requests over a WSGI ``environ`` (Werkzeug's, WebOb's).

    It reads ``request.environ`` directly (:func:`environ_hooks`): no header object is built
    on the hot path. Example (in a hooks module): ``kc_request_header = wsgi_header_hook()``.
    """
    return environ_hooks(_request_environ)[0]


_request_environ = attrgetter("environ")


def start_response_adding(
    headers: Sequence[tuple[str, str]], start_response: StartResponse
) -> StartResponse:
    """A WSGI ``start_response`` that also sends ``headers`` (refreshed token cookies)."""
    if not headers:
        return start_response

    def start(status: str, response_headers: list[tuple[str, str]], *args: Any) -> Any:
        return start_response(status, [*response_headers, *headers], *args)

    return cast("StartResponse", start)


# -- pyramid: permission strings ----------------------------------------------------------------


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


# -- pyramid: endpoint views --------------------------------------------------------------------


def endpoint_view(
    endpoint: Endpoint, engine_for: Callable[[Any], Engine], name: str
) -> Callable[[Any], Any]:
    """A view function ``name(request)`` answering with ``engine_for(request)``'s ``endpoint``.

    For frameworks whose views take the request (Pyramid's; Django's with ``engine_for``
    ignoring it). Example::

        login_view = endpoint_view(ENDPOINTS[0], engine_of, "login_view")
    """

    def view(request: Any) -> Any:
        return endpoint.serve(engine_for(request), request)

    view.__name__ = view.__qualname__ = name
    view.__doc__ = f"``{{prefix}}/{endpoint.path}``: the engine's {endpoint.name} endpoint."
    return view


# -- pyramid: urlencoded text -------------------------------------------------------------------


def urlencoded_values(raw: bytes) -> dict[str, str]:
    """The first value of each field of a urlencoded query or body, read as UTF-8 with bad
    bytes replaced (for input a framework's own parser refuses)."""
    return first_values(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


# -- pyramid: setting names ---------------------------------------------------------------------

#: Every setting kc reads (lower case): the fields of :class:`~kc_core.Config` and of
#: :class:`~kc_core.engine.EngineSettings`, for adapters that refuse a misspelt key.
SETTING_NAMES = frozenset(f.name for f in (*fields(Config), *fields(EngineSettings)))


# -- django: an engine built on first use -----------------------------------------------------

Built = TypeVar("Built")


class BuiltOnce(Generic[Built]):
    """``build()``'s result, made by the first caller (one thread at a time), kept until
    :meth:`reset`: an engine built from settings on first use, rebuilt when they change."""

    def __init__(self, build: Callable[[], Built]) -> None:
        self._build = build
        self._built: Built | None = None
        self._lock = threading.Lock()

    def get(self) -> Built:
        """The result kept, else ``build()``'s (whose errors propagate, nothing kept)."""
        built = self._built
        if built is None:
            with self._lock:
                built = self._built
                if built is None:
                    built = self._built = self._build()
        return built

    def reset(self) -> None:
        """Forget the result: the next :meth:`get` builds again."""
        with self._lock:
            self._built = None


# -- django: the guard of one request ----------------------------------------------------------


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


# -- django: hooks reading a WSGI environ --------------------------------------------------------


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


# -- django: attributes set where they differ ----------------------------------------------------


def set_changed(target: object, values: Mapping[str, Any]) -> list[str]:
    """Set each of ``values`` that ``target`` has as an attribute and holds another value of;
    return the names set (for a model's ``save(update_fields=...)``)."""
    changed: list[str] = []
    for name, value in values.items():
        if hasattr(target, name) and getattr(target, name) != value:
            setattr(target, name, value)
            changed.append(name)
    return changed


# -- django: the engine a setting gives, and its one client -------------------------------------


def configured_engine(
    values: Mapping[str, Any], name: str, *, key: str, load: Callable[[str], Any]
) -> Engine | None:
    """The engine setting ``name`` of ``values`` gives: ``None`` (not set), a ready
    :class:`~kc_core.engine.Engine`, or the dotted path of a callable returning one
    (imported by ``load``, the framework's importer).

    Raises:
        ConfigError: (of ``key``) the setting gives no engine.
    """
    from .engine import Engine

    given = values.get(name)
    engine = load(given)() if isinstance(given, str) else given
    if engine is not None and not isinstance(engine, Engine):
        raise ConfigError(f"{name} must be an Engine, got {type(engine)!r}", key=key)
    return engine


def single_client_config(engine: Engine) -> Config | None:
    """The configuration of ``engine``'s one client, or ``None`` if it serves several tenants."""
    try:
        return engine.client.config
    except KeycloakError:  # Engine.client refuses when the tenant depends on the request
        return None


# -- django: hooks the framework's request answers -----------------------------------------------


def request_call(method: str) -> Callable[[Any], Any]:
    """A request hook answering ``request.<method>()``, as :func:`request_attribute` does
    for an attribute. Example: ``kc_request_is_secure = request_call("is_secure")``."""

    @hookimpl
    def call(request: Any) -> Any:
        return getattr(request, method)()

    call.__name__ = call.__qualname__ = f"request_{method}"
    return call


# -- starlette: requirement shorthands --------------------------------------------------------

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


# -- starlette: ASGI bodies and seed ----------------------------------------------------------

#: The largest form body read for the engine's POST endpoints (a logout token is about 2 KB).
MAX_FORM_BYTES = 64 * 1024
_FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form_body(content_type: str, chunks: AsyncIterable[bytes]) -> dict[str, str]:
    """A urlencoded body's fields (first value of each); empty for anything else or too big.

    For an async adapter, which reads the body of the engine's POST endpoints itself.
    """
    if not content_type.lower().startswith(_FORM_TYPE):
        return {}
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return urlencoded_values(bytes(body))


async def seed_guard(
    seed: SeedMiddleware,
    engine: AsyncEngine,
    request: Any,
    path: str,
    session: MutableMapping[str, Any],
    without_query: Callable[[], Any],
) -> Guard:
    """What an async seed middleware does at ``path`` (not one of the engine's endpoints).

    A guard with a ``response`` (the logout, a refusal, the login at Keycloak) is sent
    instead of the app; otherwise the app runs, for the guard's ``identity`` if it has one
    (else for whoever the session says). ``without_query()`` is ``request`` without its
    query string: a page's own query must not choose where the user lands after login.
    """
    action = seed.action(engine.engine, path, session)
    if action is SeedAction.PASS:
        return Guard()
    if action is SeedAction.LOGOUT:
        return Guard(response=await engine.logout(request))
    guard = await engine.protect(request)
    if seed.must_log_in(engine.engine, guard, session):
        return Guard(response=await engine.login(without_query()))  # straight to Keycloak
    return guard
