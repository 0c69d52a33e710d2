"""The plugin manager and the typed facade the engine uses instead of calling hooks by name.

Where plugins come from:

- **An adapter registers itself.** kc's adapters call :meth:`Plugins.ensure_registered` with
  their hooks module when the app builds them (``Keycloak(app)``, the middleware ...), so an
  app's own framework never needs an entry point.
- **Adapter entry points** (group ``kc_core.adapters``) are named after the top-level package
  of the framework whose requests they handle (``bottle = "kc_bottle.hooks"``). One is imported
  only when a request of that framework arrives that no registered adapter claims, so a Flask
  app never imports Django's adapter (or Django).
- **Other plugins** (events, identities, tenants, token stores; group ``kc_core``) are imported
  by :meth:`Plugins.check`, which the engine runs when it is built. An adapter found there is
  loaded then too (the older form, still supported).
- :meth:`Plugins.register` adds one defined in your own code.

``Plugins(disable=["bottle"])`` or ``KC_DISABLE_PLUGINS=bottle,audit`` (comma-separated entry
point names) leaves installed plugins unloaded; ``Plugins(load_entry_points=False)`` loads none.

:meth:`Plugins.check` runs when an engine is built, so a misspelt hook name or an adapter
missing a required hook fails at start-up, not at the first request.

Like pytest, kc treats every function named ``kc_*`` of a plugin as a hook implementation,
marked with :data:`hookimpl` or not; the marker only adds options (``tryfirst`` ...).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, cast

import pluggy

from . import hookspecs
from .errors import KeycloakError
from .identity import Identity

if TYPE_CHECKING:
    from .config import Config
    from .oidc import TokenSet
    from .stores import TokenStore

__all__ = [
    "ADAPTER_GROUP",
    "DISABLE_ENV",
    "PLUGIN_GROUP",
    "Adapter",
    "AdapterNotFound",
    "PluginError",
    "Plugins",
    "hookimpl",
]

PROJECT = "kc_core"
#: Entry-point group of plugins loaded when the engine is built (events, stores ...).
PLUGIN_GROUP = "kc_core"
#: Entry-point group of adapters, each named after its framework's top-level package.
ADAPTER_GROUP = "kc_core.adapters"
#: Environment variable naming installed plugins (entry-point names, comma-separated) to skip.
DISABLE_ENV = "KC_DISABLE_PLUGINS"
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Adapter hooks and their arguments, in the order the facade passes them.
_ADAPTER_HOOKS: dict[str, tuple[str, ...]] = {
    "kc_request_method": ("request",),
    "kc_request_url": ("request",),
    "kc_request_path": ("request",),
    "kc_request_query": ("request",),
    "kc_request_header": ("request", "name"),
    "kc_request_header_names": ("request",),
    "kc_request_cookies": ("request",),
    "kc_request_form": ("request",),
    "kc_request_client_address": ("request",),
    "kc_request_is_secure": ("request",),
    "kc_session": ("request",),
    "kc_session_rotate": ("request",),
    "kc_redirect": ("request", "location", "headers"),
    "kc_response": ("request", "status", "body", "content_type", "headers"),
}
#: Adapter hooks with a default (see :mod:`kc_core.hookspecs`); every other one is required.
_OPTIONAL_HOOKS = frozenset(
    {
        "kc_session_rotate",
        "kc_request_client_address",
        "kc_request_is_secure",
        "kc_request_header_names",
    }
)
_REQUIRED_HOOKS = tuple(h for h in _ADAPTER_HOOKS if h not in _OPTIONAL_HOOKS)


class PluginError(KeycloakError):
    """A plugin is broken: an unknown hook, an adapter missing a hook, no request types."""


class AdapterNotFound(KeycloakError):
    """No registered adapter handles this request type."""


@dataclass(frozen=True, slots=True)
class Adapter:
    """One adapter's hook implementations, bound once so per-request calls are plain calls."""

    name: str
    method: Callable[[Any], str]
    url: Callable[[Any], str]
    path: Callable[[Any], str]
    query: Callable[[Any], Mapping[str, str]]
    header: Callable[[Any, str], str | None]
    header_names: Callable[[Any], Iterable[str]]
    cookies: Callable[[Any], Mapping[str, str]]
    form: Callable[[Any], Mapping[str, str]]
    client_address: Callable[[Any], str | None]
    is_secure: Callable[[Any], bool]
    session: Callable[[Any], MutableMapping[str, Any]]
    rotate_session: Callable[[Any], None]
    redirect: Callable[[Any, str, Sequence[tuple[str, str]]], Any]
    response: Callable[[Any, int, bytes, str, Sequence[tuple[str, str]]], Any]


def _no_rotation(request: Any) -> None:
    return None


def _no_client_address(request: Any) -> str | None:
    return None


def _no_header_names(request: Any) -> Iterable[str]:
    return ()


class _Manager(pluggy.PluginManager):
    """pluggy's manager, taking unmarked ``kc_*`` functions as hooks (as pytest does)."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("kc_"):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {
                    "wrapper": False,
                    "hookwrapper": False,
                    "optionalhook": False,
                    "tryfirst": False,
                    "trylast": False,
                    "specname": None,
                }
        return opts


class Plugins:
    """kc's pluggy plugin manager with a typed facade.

    Args:
        load_entry_points: load installed plugins (entry points) at all; ``False`` starts
            empty, for tests and explicit set-ups.
        disable: entry-point names to leave unloaded, added to those in the
            ``KC_DISABLE_PLUGINS`` environment variable (comma-separated). Plugins your own
            code registers (and adapters registering themselves) are not affected.

    Nothing is imported when the manager is made: plugins of the ``kc_core`` group load in
    :meth:`check`, adapters of ``kc_core.adapters`` when their framework's first request
    arrives (see the module docstring).

    Adapter hooks (``kc_request_*``, ``kc_session*``, ``kc_redirect``, ``kc_response``)
    are called only on the adapter owning the request's type, resolved once per type:
    the most specific declared type wins, then pluggy's order (last registered first).
    """

    def __init__(self, *, load_entry_points: bool = True, disable: Iterable[str] = ()) -> None:
        self.manager: pluggy.PluginManager = _Manager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self._builtin = _BuiltinPlugin()
        self.manager.register(self._builtin, name="kc_core.builtin")
        self.disabled: frozenset[str] = frozenset(disable) | _disabled_by_environment()
        self._load_entry_points = load_entry_points
        self._plugins_loaded = not load_entry_points
        self._pending_adapters: dict[str, EntryPoint] | None = None if load_entry_points else {}
        self._adapters_by_type: dict[type, Adapter] = {}
        self._checked = False

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register an adapter or event plugin defined in your own code."""
        self.manager.register(plugin, name=name)
        self._adapters_by_type = {}
        self._checked = False

    def ensure_registered(self, plugin: object, name: str | None = None) -> Plugins:
        """Register ``plugin`` unless it already is; return this manager.

        What an adapter calls with its hooks module when the app builds it, so the app's
        own framework is served without any entry point being loaded::

            engine = Engine(config, plugins=Plugins().ensure_registered(kc_flask.plugin, "flask"))

        ``name`` is taken only if no other plugin has it.
        """
        if not self.manager.is_registered(plugin):
            taken = name is not None and self.manager.get_plugin(name) is not None
            self.register(plugin, name=None if taken else name)
        return self

    def unregister(self, plugin: object) -> None:
        """Remove a plugin registered before."""
        self.manager.unregister(plugin)
        self._adapters_by_type = {}

    def check(self) -> None:
        """Load the ``kc_core`` entry points (once), then fail loudly on a broken plugin.

        Broken means: a hook that does not exist (a typo), adapter hooks without
        ``kc_request_types`` (they would never be called), or an adapter missing one of the
        required hooks (all adapter hooks but ``kc_session_rotate``,
        ``kc_request_client_address`` and ``kc_request_is_secure``).

        Raises:
            PluginError: naming the plugin and the hooks.
        """
        self._load_plugins()
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc
        adapters = {impl.plugin for impl in self.manager.hook.kc_request_types.get_hookimpls()}
        owners: dict[str, set[object]] = {}
        for hook_name in _ADAPTER_HOOKS:
            owners[hook_name] = set()
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                if impl.plugin not in adapters:
                    raise PluginError(
                        f"plugin {impl.plugin_name} implements {hook_name} but not "
                        "kc_request_types, so no request would ever reach it"
                    )
                owners[hook_name].add(impl.plugin)
        for adapter in adapters:
            missing = [h for h in _REQUIRED_HOOKS if adapter not in owners[h]]
            if missing:
                name = self.manager.get_name(adapter) or repr(adapter)
                raise PluginError(f"adapter {name} does not implement {', '.join(missing)}")
        self._checked = True

    def adapter_names(self) -> list[str]:
        """Names of the registered adapters, then of installed ones not loaded yet."""
        self._load_plugins()
        names = [impl.plugin_name for impl in self.manager.hook.kc_request_types.get_hookimpls()]
        pending = [name for name in self._adapter_entry_points() if name not in names]
        return names + sorted(pending)

    def adapter_for(self, request: Any) -> Adapter:
        """The adapter owning ``request``'s type (resolved once per type, then cached).

        Raises:
            AdapterNotFound: no adapter declared a type ``request`` is an instance of.
            PluginError: the adapter loaded for it is broken (see :meth:`check`).
        """
        adapter = self._adapters_by_type.get(type(request))
        if adapter is None:
            adapter = self._resolve(type(request))
        return adapter

    # -- loading ------------------------------------------------------------------------

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry_point in _unique(entry_points(group=PLUGIN_GROUP)):
            if entry_point.name not in self.disabled:
                self._load(entry_point)

    def _adapter_entry_points(self) -> dict[str, EntryPoint]:
        if self._pending_adapters is None:
            self._pending_adapters = {
                ep.name: ep
                for ep in _unique(entry_points(group=ADAPTER_GROUP))
                if ep.name not in self.disabled
            }
        return self._pending_adapters

    def _load_adapters_for(self, request_type: type) -> bool:
        """Load the adapter entry points named after a package of ``request_type``'s MRO."""
        packages = {cls.__module__.partition(".")[0] for cls in request_type.__mro__}
        pending = self._adapter_entry_points()
        # A second adapter for one framework is named "<package>.<anything>".
        wanted = [name for name in pending if name.partition(".")[0] in packages]
        for name in wanted:
            self._load(pending.pop(name))
        return bool(wanted)

    def _load(self, entry_point: EntryPoint) -> None:
        if self.manager.get_plugin(entry_point.name) is not None:
            return
        plugin = entry_point.load()
        # An adapter that registered itself is not registered again under its entry point.
        if not self.manager.is_registered(plugin):
            self.register(plugin, name=entry_point.name)

    def _resolve(self, request_type: type) -> Adapter:
        if not self._checked:
            self.check()
        best = self._owner_of(request_type)
        if best is None and self._load_adapters_for(request_type):
            self.check()
            best = self._owner_of(request_type)
        if best is None:
            raise AdapterNotFound(
                f"no kc adapter handles {request_type.__module__}.{request_type.__qualname__}; "
                f"installed adapters: {', '.join(self.adapter_names()) or 'none'}"
            )
        adapter = self._bind(best)
        self._adapters_by_type = {**self._adapters_by_type, request_type: adapter}
        return adapter

    def _owner_of(self, request_type: type) -> object | None:
        mro = request_type.__mro__
        best: tuple[int, object] | None = None
        # Call order (last registered, tryfirst first) breaks ties between equal matches.
        for impl in reversed(self.manager.hook.kc_request_types.get_hookimpls()):
            declared = tuple(cast("Sequence[type]", impl.function()))
            distances = [mro.index(t) for t in declared if t in mro]
            if distances and (best is None or min(distances) < best[0]):
                best = (min(distances), impl.plugin)
        return None if best is None else best[1]

    def _bind(self, plugin: object) -> Adapter:
        functions: dict[str, Callable[..., Any]] = {}
        for hook_name, argnames in _ADAPTER_HOOKS.items():
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                if impl.plugin is plugin:
                    functions[hook_name] = _positional(impl.function, impl.argnames, argnames)
        name = self.manager.get_name(plugin) or repr(plugin)
        functions.setdefault("kc_session_rotate", _no_rotation)
        functions.setdefault("kc_request_client_address", _no_client_address)
        functions.setdefault("kc_request_header_names", _no_header_names)
        url = functions["kc_request_url"]
        functions.setdefault(
            "kc_request_is_secure", lambda request: url(request).startswith("https:")
        )
        return Adapter(
            name=name,
            method=functions["kc_request_method"],
            url=url,
            path=functions["kc_request_path"],
            query=functions["kc_request_query"],
            header=_absent_if_empty(functions["kc_request_header"]),
            header_names=functions["kc_request_header_names"],
            cookies=functions["kc_request_cookies"],
            form=functions["kc_request_form"],
            client_address=functions["kc_request_client_address"],
            is_secure=functions["kc_request_is_secure"],
            session=functions["kc_session"],
            rotate_session=functions["kc_session_rotate"],
            redirect=functions["kc_redirect"],
            response=functions["kc_response"],
        )

    # -- events and choices ---------------------------------------------------------------

    def after_login(self, request: Any, tokens: TokenSet, identity: Any) -> None:
        """Broadcast ``kc_after_login``."""
        self.manager.hook.kc_after_login(request=request, tokens=tokens, identity=identity)

    def after_logout(self, request: Any, identity: Any) -> None:
        """Broadcast ``kc_after_logout``."""
        self.manager.hook.kc_after_logout(request=request, identity=identity)

    def after_refresh(self, request: Any, tokens: TokenSet) -> None:
        """Broadcast ``kc_after_refresh``."""
        self.manager.hook.kc_after_refresh(request=request, tokens=tokens)

    def build_identity(self, claims: Mapping[str, Any], request: Any) -> Any:
        """The first ``kc_build_identity`` result (kc's built-in plugin always answers)."""
        hook = self.manager.hook.kc_build_identity
        implementations = hook.get_hookimpls()
        if len(implementations) == 1 and implementations[0].plugin is self._builtin:
            return Identity.from_claims(claims)  # kc's default alone: no hook machinery per token
        return hook(claims=claims, request=request)

    def select_tenant(self, request: Any) -> str | None:
        """The first ``kc_select_tenant`` result."""
        result = self.manager.hook.kc_select_tenant(request=request)
        return None if result is None else str(result)

    def token_store(self, config: Config) -> TokenStore | None:
        """The first ``kc_token_store`` result, or ``None`` (then the engine's default)."""
        store: TokenStore | None = self.manager.hook.kc_token_store(config=config)
        return store


def _positional(
    function: Callable[..., Any], accepted: Sequence[str], argnames: tuple[str, ...]
) -> Callable[..., Any]:
    """``function`` callable with the spec's arguments in order.

    pluggy lets an implementation take fewer arguments than its spec; the facade calls
    positionally, so such an implementation gets a small wrapper passing only its own.
    """
    if tuple(accepted) == argnames:
        return function
    wanted = [i for i, name in enumerate(argnames) if name in accepted]

    def call(*args: Any) -> Any:
        return function(**{argnames[i]: args[i] for i in wanted})

    return call


def _absent_if_empty(header: Callable[[Any, str], str | None]) -> Callable[[Any, str], str | None]:
    """``header`` answering ``None`` for an empty value too.

    Frameworks differ (``""`` or ``None`` for a missing header); an empty ``Authorization``
    taken for a bearer token would turn every browser login into a 401.
    """

    def read(request: Any, name: str) -> str | None:
        return header(request, name) or None

    return read


def _disabled_by_environment() -> frozenset[str]:
    names = os.environ.get(DISABLE_ENV, "")
    return frozenset(name.strip() for name in names.split(",") if name.strip())


def _unique(found: Iterable[EntryPoint]) -> list[EntryPoint]:
    """One entry point per name, the first found (a distribution seen twice lists it twice)."""
    by_name: dict[str, EntryPoint] = {}
    for entry_point in found:
        by_name.setdefault(entry_point.name, entry_point)
    return list(by_name.values())


class _BuiltinPlugin:
    """kc's own defaults, registered like any plugin and overridable by tried-first plugins."""

    @hookimpl(trylast=True)
    def kc_build_identity(self, claims: Mapping[str, Any], request: Any) -> Any:
        return Identity.from_claims(claims)
