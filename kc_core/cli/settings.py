"""The app's own kc settings, read the way the app reads them: the environment and
``keycloak.json``, or a Django, Flask or Pyramid project named on the command line."""

from __future__ import annotations

import configparser
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..engine.settings import EngineSettings
from ..errors import ConfigError

__all__ = ["AppSettings", "load_app_settings"]


@dataclass(frozen=True, slots=True)
class AppSettings:
    """The client settings and engine settings of one app, and where they came from."""

    config: Config
    engine: EngineSettings
    source: str


def load_app_settings(
    *,
    django: str | None = None,
    flask: str | None = None,
    pyramid: str | None = None,
    settings_file: str | None = None,
) -> AppSettings:
    """Read the app's settings from the named framework project, else the environment.

    Raises:
        ConfigError: a setting is missing or invalid, or the project cannot be loaded.
    """
    if django:
        return _from_django(django)
    if flask:
        return _from_flask(flask)
    if pyramid:
        return _from_pyramid(pyramid)
    config = Config.load(settings_file=settings_file)
    where = settings_file or os.environ.get("KEYCLOAK_SETTINGS")
    if where is None and Path("keycloak.json").is_file():
        where = "./keycloak.json"
    source = "KEYCLOAK_* environment" + (f", {where}" if where else "")
    return AppSettings(config, EngineSettings.from_mapping(os.environ), source)


def _import(module: str, what: str) -> Any:
    # The project is imported as the app's own entry point would: from the working directory.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"cannot import {what} {module!r}: {exc}", key=what) from exc


def _adapter(module: str, distribution: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"reading these settings needs {distribution}: {exc}", key=module
        ) from exc


def _from_django(module: str) -> AppSettings:
    config_module = _adapter("kc_django.config", "kc-django")
    settings = _import(module, "Django settings module")
    values = config_module.project_values(settings)
    config = config_module.client_config(values, base_dir=getattr(settings, "BASE_DIR", None))
    return AppSettings(config, config_module.engine_settings(values), f"Django settings {module}")


def _from_flask(target: str) -> AppSettings:
    config_module = _adapter("kc_flask.config", "kc-flask")
    module_name, _, attribute = target.partition(":")
    module = _import(module_name, "Flask app module")
    app = getattr(module, attribute or "app", None)
    if app is not None and not hasattr(app, "config") and callable(app):
        app = app()  # an app factory, as `flask --app module:create_app` accepts
    if app is None or not hasattr(app, "config"):
        raise ConfigError(f"{target!r} names no Flask app (module:attribute)", key="flask")
    config = config_module.client_config(app.config, root_path=getattr(app, "root_path", None))
    return AppSettings(config, config_module.engine_settings(app.config), f"Flask app {target}")


def _from_pyramid(ini: str) -> AppSettings:
    config_module = _adapter("kc_pyramid.config", "kc-pyramid")
    name, _, section = ini.partition("#")  # development.ini#main, as pserve accepts
    path, section_name = Path(name), f"app:{section or 'main'}"
    if not path.is_file():
        raise ConfigError(f"no Pyramid settings file {name}", key="pyramid")
    parser = configparser.ConfigParser(defaults={"here": str(path.resolve().parent)})
    parser.read(path, encoding="utf-8")
    if not parser.has_section(section_name):
        raise ConfigError(f"{path} has no [{section_name}] section", key="pyramid")
    settings = config_module.keycloak_settings(dict(parser.items(section_name)))
    config = config_module.client_config(settings)
    return AppSettings(
        config, config_module.engine_settings(settings), f"Pyramid settings {path} [{section_name}]"
    )
