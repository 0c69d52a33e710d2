"""kc's settings from a Django project: ``settings.KEYCLOAK``, ``KEYCLOAK_*``, ``keycloak.json``.

Either group them in one dict (Django's ``DATABASES`` style, keys without the prefix)::

    KEYCLOAK = {"SERVER_URL": "https://sso.example.com", "REALM": "shop", ...}

or write one setting each (``KEYCLOAK_SERVER_URL = ...``); a ``KEYCLOAK_*`` setting wins over
the same key in the dict. Each field of :class:`kc_core.Config` is a key (``REALM``,
``CLIENT_SECRET`` ...), and so is each field of :class:`kc_core.engine.EngineSettings`
(``PREFIX``, ``LOGOUT_MODE`` ...); ``SCOPES`` belongs to the client. Values may be Python
values or strings (read from the environment), parsed by the setting's type. Settings not
given come from the Keycloak adapter file ``KEYCLOAK_SETTINGS`` names (relative to
``BASE_DIR``), else ``keycloak.json`` in ``BASE_DIR`` or the working directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kc_core import Config, ConfigError
from kc_core.adapters import SettingsReader, settings_file

__all__ = [
    "ENGINE_KEY",
    "PREFIX",
    "SETTINGS_FILE_KEY",
    "client_config",
    "engine_settings",
    "project_values",
]

PREFIX = "KEYCLOAK_"
#: Names a Keycloak adapter file (``keycloak.json``); relative paths start at ``BASE_DIR``.
SETTINGS_FILE_KEY = "KEYCLOAK_SETTINGS"
#: A ready :class:`~kc_core.engine.Engine`, or the dotted path of a callable returning one.
ENGINE_KEY = "KEYCLOAK_ENGINE"
_GROUPED = "KEYCLOAK"


def project_values(settings: Any) -> dict[str, Any]:
    """Every kc setting of a Django ``settings`` object as ``KEYCLOAK_*`` keys.

    Raises:
        ConfigError: ``settings.KEYCLOAK`` is not a mapping.
    """
    values: dict[str, Any] = {}
    grouped = getattr(settings, _GROUPED, None) or {}
    if not isinstance(grouped, Mapping):
        raise ConfigError("settings.KEYCLOAK must be a dict", key=_GROUPED)
    for key, value in grouped.items():
        name = str(key).upper()
        values[name if name.startswith(PREFIX) else PREFIX + name] = value
    for name in dir(settings):
        if name.startswith(PREFIX):
            values[name] = getattr(settings, name)
    return values


def _where(key: str) -> str:
    if key.upper() in (SETTINGS_FILE_KEY, _GROUPED):
        return f"in Django, check settings.{key.upper()}"
    name = key.upper()
    return f"in Django, set settings.KEYCLOAK[{name!r}] or {PREFIX}{name}, or use keycloak.json"


_READER = SettingsReader(PREFIX, _where, invalid_key=_GROUPED)


def client_config(values: Mapping[str, Any], *, base_dir: str | Path | None = None) -> Config:
    """The client :class:`~kc_core.Config` from ``KEYCLOAK_*`` keys, then ``keycloak.json``.

    Raises:
        ConfigError: a required setting is missing or invalid; the message names the setting.
    """
    named = settings_file(values.get(SETTINGS_FILE_KEY), base_dir)
    return _READER.client_config(values, settings_file=named)


engine_settings = _READER.engine_settings
"""The engine's :class:`~kc_core.engine.EngineSettings` from ``KEYCLOAK_*`` keys (overrides win)."""
