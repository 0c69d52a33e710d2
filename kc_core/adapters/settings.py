"""kc's settings as the framework spells them, and the engine an adapter serves.

:class:`SettingsReader` and :func:`settings_file` read the client and engine settings from the
framework's own configuration; :data:`SETTING_NAMES` lists them; :func:`adapter_registration`
and :func:`adapter_engine` give the adapter's plugin manager and engine; :class:`BuiltOnce`,
:func:`configured_engine` and :func:`single_client_config` serve frameworks whose engine comes
from settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..config import Config
from ..engine.settings import EngineSettings
from ..errors import ConfigError, KeycloakError
from ..plugins import Plugins

if TYPE_CHECKING:
    from ..engine import Engine

_ENGINE_FIELDS = tuple(f.name for f in fields(EngineSettings) if f.name != "scopes")


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


#: Every setting kc reads (lower case): the fields of :class:`~kc_core.Config` and of
#: :class:`~kc_core.engine.EngineSettings`, for adapters that refuse a misspelt key.
SETTING_NAMES = frozenset(f.name for f in (*fields(Config), *fields(EngineSettings)))


# -- the adapter's engine ---------------------------------------------------------------------


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
    from ..engine import Engine

    plugins = with_adapter(plugins or Plugins())
    return Engine(config(), plugins=plugins, settings=settings(), **options)


# -- an engine built on first use -------------------------------------------------------------

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


# -- the engine a setting gives, and its one client -------------------------------------------


def configured_engine(
    values: Mapping[str, Any], name: str, *, key: str, load: Callable[[str], Any]
) -> Engine | None:
    """The engine setting ``name`` of ``values`` gives: ``None`` (not set), a ready
    :class:`~kc_core.engine.Engine`, or the dotted path of a callable returning one
    (imported by ``load``, the framework's importer).

    Raises:
        ConfigError: (of ``key``) the setting gives no engine.
    """
    from ..engine import Engine

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
