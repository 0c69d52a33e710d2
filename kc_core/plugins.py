"""The plugin manager and the typed facade the engine uses instead of calling hooks by name.

Adapters are discovered through entry points in the group ``kc_core``; :meth:`Plugins.register`
adds one defined in the user's own code. :meth:`Plugins.check` runs when an engine is built,
so a misspelt hook name fails at start-up, not at the first request.

Like pytest, kc treats every function named ``kc_*`` of a plugin as a hook implementation,
marked with :data:`hookimpl` or not; the marker only adds options (``tryfirst`` ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pluggy

from . import hookspecs
from .engine.values import Identity
from .errors import KeycloakError

if TYPE_CHECKING:
    from .config import Config
    from .oidc import TokenSet
    from .stores import TokenStore

__all__ = ["Adapter", "AdapterNotFound", "PluginError", "Plugins", "hookimpl"]

PROJECT = "kc_core"
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

    ``Plugins()`` loads every adapter installed (entry points, group ``kc_core``);
    ``Plugins(load_entry_points=False)`` starts empty, for tests and explicit set-ups.

    Adapter hooks (``kc_request_*``, ``kc_session*``, ``kc_redirect``, ``kc_response``)
    are called only on the adapter owning the request's type, resolved once per type:
    the most specific declared type wins, then pluggy's order (last registered first).
    """

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.manager: pluggy.PluginManager = _Manager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.manager.register(_BuiltinPlugin(), name="kc_core.builtin")
        if load_entry_points:
            self.manager.load_setuptools_entrypoints(PROJECT)
        self._adapters_by_type: dict[type, Adapter] = {}
        self._checked = False

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register an adapter or event plugin defined in your own code."""
        self.manager.register(plugin, name=name)
        self._adapters_by_type = {}
        self._checked = False

    def unregister(self, plugin: object) -> None:
        """Remove a plugin registered before."""
        self.manager.unregister(plugin)
        self._adapters_by_type = {}

    def check(self) -> None:
        """Fail loudly on a broken plugin: a hook that does not exist (a typo), or adapter
        hooks without ``kc_request_types`` (they would never be called).

        Raises:
            PluginError: naming the plugin and the hook.
        """
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc
        adapters = {impl.plugin for impl in self.manager.hook.kc_request_types.get_hookimpls()}
        for hook_name in _ADAPTER_HOOKS:
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                if impl.plugin not in adapters:
                    raise PluginError(
                        f"plugin {impl.plugin_name} implements {hook_name} but not "
                        "kc_request_types, so no request would ever reach it"
                    )
        self._checked = True

    def adapter_names(self) -> list[str]:
        """Names of registered plugins that are adapters (implement ``kc_request_types``)."""
        return [impl.plugin_name for impl in self.manager.hook.kc_request_types.get_hookimpls()]

    def adapter_for(self, request: Any) -> Adapter:
        """The adapter owning ``request``'s type (resolved once per type, then cached).

        Raises:
            AdapterNotFound: no adapter declared a type ``request`` is an instance of.
        """
        adapter = self._adapters_by_type.get(type(request))
        if adapter is None:
            adapter = self._resolve(type(request))
        return adapter

    def _resolve(self, request_type: type) -> Adapter:
        if not self._checked:
            self.check()
        mro = request_type.__mro__
        best: tuple[int, object] | None = None
        # Call order (last registered, tryfirst first) breaks ties between equal matches.
        for impl in reversed(self.manager.hook.kc_request_types.get_hookimpls()):
            declared = tuple(cast("Sequence[type]", impl.function()))
            distances = [mro.index(t) for t in declared if t in mro]
            if distances and (best is None or min(distances) < best[0]):
                best = (min(distances), impl.plugin)
        if best is None:
            raise AdapterNotFound(
                f"no kc adapter handles {request_type.__module__}.{request_type.__qualname__}; "
                f"installed adapters: {', '.join(self.adapter_names()) or 'none'}"
            )
        adapter = self._bind(best[1])
        self._adapters_by_type = {**self._adapters_by_type, request_type: adapter}
        return adapter

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
        if "kc_request_is_secure" not in functions and "kc_request_url" in functions:
            url = functions["kc_request_url"]
            functions["kc_request_is_secure"] = lambda request: url(request).startswith("https:")
        missing = [h for h in _ADAPTER_HOOKS if h not in functions]
        if missing:
            raise PluginError(f"adapter {name} does not implement {', '.join(missing)}")
        return Adapter(
            name=name,
            method=functions["kc_request_method"],
            url=functions["kc_request_url"],
            path=functions["kc_request_path"],
            query=functions["kc_request_query"],
            header=functions["kc_request_header"],
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
        return self.manager.hook.kc_build_identity(claims=claims, request=request)

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


class _BuiltinPlugin:
    """kc's own defaults, registered like any plugin and overridable by tried-first plugins."""

    @hookimpl(trylast=True)
    def kc_build_identity(self, claims: Mapping[str, Any], request: Any) -> Any:
        return Identity.from_claims(claims)
