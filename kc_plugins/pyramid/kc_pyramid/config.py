"""kc's settings from a Pyramid app's settings: ``keycloak.*`` keys, then ``keycloak.json``.

Each field of :class:`kc_core.Config` is read from ``keycloak.<field>`` (``keycloak.realm``,
``keycloak.client_secret`` ...) and each field of :class:`kc_core.engine.EngineSettings` the
same way (``keycloak.prefix``, ``keycloak.logout_mode`` ...); ``keycloak.scopes`` belongs to
the client. Values may be Python values or the strings of an ``.ini`` file, parsed by the
setting's type (``keycloak.exempt_paths = /health /static/``). A ``keycloak.*`` key that names
no setting is an error, so a typo fails at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kc_core import Config, ConfigError
from kc_core.adapters import SETTING_NAMES, SettingsReader

__all__ = ["OBJECT_KEYS", "PREFIX", "client_config", "engine_settings", "keycloak_settings"]

PREFIX = "keycloak."
#: Setting naming a Keycloak adapter file (default: ``./keycloak.json`` when it exists).
SETTINGS_FILE_KEY = "keycloak.settings"
#: Setting listing the ``Host`` values (``shop.example``, ``127.0.0.1:6543``) kc builds URLs
#: from; any other answers 400. Pyramid has no host allow-list of its own.
TRUSTED_HOSTS_KEY = "keycloak.trusted_hosts"
#: Settings holding objects (or dotted names of them) rather than values.
OBJECT_KEYS = frozenset(PREFIX + name for name in ("engine", "store", "plugins", "enforcer"))
_OWN_KEYS = OBJECT_KEYS | {SETTINGS_FILE_KEY, TRUSTED_HOSTS_KEY}
_KNOWN_KEYS = _OWN_KEYS | {PREFIX + name for name in SETTING_NAMES}


def keycloak_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``keycloak.*`` entries of ``settings``, checked against the known settings.

    Raises:
        ConfigError: a ``keycloak.*`` key names no setting.
    """
    found = {key: value for key, value in settings.items() if key.startswith(PREFIX)}
    unknown = [key for key in found if key not in _KNOWN_KEYS]
    if unknown:
        raise ConfigError(f"unknown Pyramid setting {unknown[0]!r}", key=unknown[0][len(PREFIX) :])
    return found


def _client_hint(name: str) -> str:
    key = PREFIX + name.lower() if name != "KEYCLOAK_SETTINGS" else SETTINGS_FILE_KEY
    return f"in Pyramid, set {key} in the app's settings or provide keycloak.json"


_READER = SettingsReader(
    PREFIX, _client_hint, lambda name: f"in Pyramid, check {PREFIX}{name}", upper=False
)


def client_config(settings: Mapping[str, Any]) -> Config:
    """The client :class:`~kc_core.Config` from ``keycloak.*`` settings, then ``keycloak.json``.

    The file is ``keycloak.settings`` when set, else ``./keycloak.json`` when it exists.
    Settings win over the file.

    Raises:
        ConfigError: a required setting is missing or invalid; the message names the key.
    """
    return _READER.client_config(settings, settings_file=settings.get(SETTINGS_FILE_KEY) or None)


def trusted_hosts(settings: Mapping[str, Any]) -> frozenset[str] | None:
    """The ``keycloak.trusted_hosts`` (lower case), or ``None`` when the setting is absent."""
    value = settings.get(TRUSTED_HOSTS_KEY)
    if value is None:
        return None
    words = value.split() if isinstance(value, str) else [str(v) for v in value]
    return frozenset(w.lower() for w in words)


engine_settings = _READER.engine_settings
"""The engine's :class:`~kc_core.engine.EngineSettings` from ``keycloak.*`` keys (overrides win)."""
