"""kc's settings from a Flask ``app.config``: ``KEYCLOAK_*`` keys, then ``keycloak.json``.

Each field of :class:`kc_core.Config` is read from ``KEYCLOAK_<FIELD>`` (``KEYCLOAK_REALM``,
``KEYCLOAK_CLIENT_SECRET`` ...) and each field of :class:`kc_core.engine.EngineSettings` the
same way (``KEYCLOAK_PREFIX``, ``KEYCLOAK_LOGOUT_MODE`` ...). ``KEYCLOAK_SCOPES`` belongs to
the client. Values may be Python values or strings (as ``app.config.from_prefixed_env`` or
environment files give them); strings are parsed by the setting's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kc_core import Config, ConfigError
from kc_core.engine import EngineSettings

__all__ = ["PREFIX", "client_config", "engine_settings"]

PREFIX = "KEYCLOAK_"
#: ``app.config`` key naming a Keycloak adapter file; relative paths start at the app root.
SETTINGS_FILE_KEY = "KEYCLOAK_SETTINGS"
_DEFAULT_SETTINGS_FILE = "keycloak.json"


def client_config(values: Mapping[str, Any], *, root_path: str | None = None) -> Config:
    """The client :class:`~kc_core.Config` from ``KEYCLOAK_*`` keys, then ``keycloak.json``.

    The file is ``KEYCLOAK_SETTINGS`` when set, else ``keycloak.json`` in ``root_path`` (the
    app's root) or in the working directory. Keys win over the file.

    Raises:
        ConfigError: a required setting is missing or invalid; the message names the key.
    """
    try:
        return Config.from_mapping(
            values, key_prefix=PREFIX, settings_file=_settings_file(values, root_path)
        )
    except ConfigError as exc:
        key = PREFIX + exc.key.upper() if exc.key != SETTINGS_FILE_KEY else SETTINGS_FILE_KEY
        raise ConfigError(
            f"{exc} - in Flask, set app.config[{key!r}] or provide keycloak.json",
            key=exc.key,
        ) from exc


def engine_settings(values: Mapping[str, Any], **overrides: Any) -> EngineSettings:
    """The engine's :class:`~kc_core.engine.EngineSettings` from ``KEYCLOAK_*`` keys.

    Raises:
        ConfigError: a value cannot be read as its setting's type, or the prefix is invalid.
    """
    try:
        return EngineSettings.from_mapping(values, key_prefix=PREFIX, **overrides)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} - in Flask, set app.config[{PREFIX + exc.key.upper()!r}]", key=exc.key
        ) from exc


def _settings_file(values: Mapping[str, Any], root_path: str | None) -> Path | None:
    named = values.get(SETTINGS_FILE_KEY)
    if named:
        path = Path(named)
        return path if path.is_absolute() or root_path is None else Path(root_path, path)
    if root_path is not None:
        candidate = Path(root_path, _DEFAULT_SETTINGS_FILE)
        if candidate.is_file():
            return candidate
    return None  # kc_core then looks for ./keycloak.json
