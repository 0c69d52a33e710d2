"""kc's settings from a Flask ``app.config``: ``KEYCLOAK_*`` keys, then ``keycloak.json``.

Each field of :class:`kc_core.Config` is read from ``KEYCLOAK_<FIELD>`` (``KEYCLOAK_REALM``,
``KEYCLOAK_CLIENT_SECRET`` ...) and each field of :class:`kc_core.engine.EngineSettings` the
same way (``KEYCLOAK_PREFIX``, ``KEYCLOAK_LOGOUT_MODE`` ...). ``KEYCLOAK_SCOPES`` belongs to
the client. Values may be Python values or strings (as ``app.config.from_prefixed_env`` or
environment files give them); strings are parsed by the setting's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kc_core import Config
from kc_core.adapters import SettingsReader, settings_file

__all__ = ["PREFIX", "client_config", "engine_settings"]

PREFIX = "KEYCLOAK_"
#: ``app.config`` key naming a Keycloak adapter file; relative paths start at the app root.
SETTINGS_FILE_KEY = "KEYCLOAK_SETTINGS"


def _key(name: str) -> str:
    key = PREFIX + name.upper() if name != SETTINGS_FILE_KEY else SETTINGS_FILE_KEY
    return f"in Flask, set app.config[{key!r}]"


_READER = SettingsReader(PREFIX, lambda name: f"{_key(name)} or provide keycloak.json", _key)


def client_config(values: Mapping[str, Any], *, root_path: str | None = None) -> Config:
    """The client :class:`~kc_core.Config` from ``KEYCLOAK_*`` keys, then ``keycloak.json``.

    The file is ``KEYCLOAK_SETTINGS`` when set, else ``keycloak.json`` in ``root_path`` (the
    app's root) or in the working directory. Keys win over the file.

    Raises:
        ConfigError: a required setting is missing or invalid; the message names the key.
    """
    named = settings_file(values.get(SETTINGS_FILE_KEY), root_path)
    return _READER.client_config(values, settings_file=named)


engine_settings = _READER.engine_settings
"""The engine's :class:`~kc_core.engine.EngineSettings` from ``KEYCLOAK_*`` keys (overrides win)."""
