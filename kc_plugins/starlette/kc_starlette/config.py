"""kc's settings for a Starlette app: ``KEYCLOAK_*`` environment variables, then ``keycloak.json``.

The client comes from :meth:`kc_core.Config.load` (keywords, then ``KEYCLOAK_SERVER_URL``,
``KEYCLOAK_REALM`` ... then ``keycloak.json``). The engine's routes and behaviour come from
``KEYCLOAK_<FIELD>`` of each :class:`kc_core.engine.EngineSettings` field
(``KEYCLOAK_PREFIX``, ``KEYCLOAK_LOGOUT_MODE`` ...), parsed by the field's type. Any mapping
works as the environment: ``os.environ`` (the default), or a dict in tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kc_core.adapters import SettingsReader
from kc_core.engine import EngineSettings

__all__ = ["PREFIX", "engine_settings"]

PREFIX = "KEYCLOAK_"
_READER = SettingsReader(
    PREFIX, lambda name: f"set the environment variable {PREFIX}{name.upper()}"
)


def engine_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> EngineSettings:
    """The engine's :class:`~kc_core.engine.EngineSettings` from ``KEYCLOAK_*`` variables.

    ``overrides`` (Python values) win over the environment.

    Raises:
        ConfigError: a value cannot be read as its setting's type, or the prefix is invalid;
            the message names the variable.
    """
    return _READER.engine_settings(os.environ if environ is None else environ, **overrides)
