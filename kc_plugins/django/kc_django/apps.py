"""The Django app ``kc_django``: it owns the project's kc engine, built from its settings.

Add ``"kc_django"`` to ``INSTALLED_APPS``. The engine is built on first use (a request, or
:func:`engine_of`) and rebuilt when a ``KEYCLOAK*`` setting changes (Django's
``setting_changed`` signal, sent by ``override_settings`` in tests). ``manage.py check``
reports settings kc cannot use (see :mod:`kc_django.checks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from django.apps import AppConfig, apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from kc_core import adapters
from kc_core.engine import Engine

from . import plugin as django_plugin
from .config import ENGINE_KEY, PREFIX, client_config, engine_settings, project_values

if TYPE_CHECKING:
    from .backends import KeycloakBackend

__all__ = ["KeycloakConfig", "Runtime", "build_engine", "engine_of", "with_django_adapter"]

APP_LABEL = "kc_django"


with_django_adapter = adapters.adapter_registration(django_plugin, "django")


def build_engine(settings: Any = None) -> Engine:
    """The engine the project's settings describe (default: ``django.conf.settings``).

    ``KEYCLOAK_ENGINE`` may name a ready :class:`~kc_core.engine.Engine` (or the dotted path
    of a callable returning one), for a token store, policy enforcer or plugins of your own.

    Raises:
        ConfigError: a required setting is missing or invalid.
    """
    source = django_settings if settings is None else settings
    values = project_values(source)
    engine = adapters.configured_engine(values, ENGINE_KEY, key="ENGINE", load=import_string)
    return adapters.adapter_engine(
        with_django_adapter,
        lambda: client_config(values, base_dir=getattr(source, "BASE_DIR", None)),
        lambda: engine_settings(values),
        engine=engine,
    )


@dataclass(slots=True)
class Runtime:
    """What kc-django uses at run time: the engine, and the local-user backend if any."""

    engine: Engine
    #: The ``KeycloakBackend`` of ``AUTHENTICATION_BACKENDS``: ``request.user`` is then a
    #: local ``User``; without it a :class:`~kc_django.users.KeycloakUser` (no database).
    backend: KeycloakBackend | None = None
    users: adapters.UserMemo = field(default_factory=adapters.UserMemo)

    def keycloak_user(self, identity: Any, token: str | None) -> Any:
        """The :class:`~kc_django.users.KeycloakUser` of an identity (made once per identity)."""
        from .users import KeycloakUser

        config = adapters.single_client_config(self.engine)
        # Several tenants: a bare role names no client.
        client_id = "" if config is None else config.client_id
        return self.users.get(
            identity, token, lambda: KeycloakUser(identity, token, client_id=client_id)
        )


def _local_user_backend() -> KeycloakBackend | None:
    if not apps.is_installed("django.contrib.auth"):
        return None
    from django.contrib.auth import get_backends

    from .backends import KeycloakBackend

    return next((b for b in get_backends() if isinstance(b, KeycloakBackend)), None)


class KeycloakConfig(AppConfig):
    """kc-django's app: the engine of the project, built from its settings on first use."""

    name = "kc_django"
    label = APP_LABEL
    verbose_name = "Keycloak"
    default = True

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        self._runtime = adapters.BuiltOnce(self._build)

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks

        setting_changed.connect(self._setting_changed, dispatch_uid="kc_django.setting_changed")

    @property
    def runtime(self) -> Runtime:
        """The engine and user backend, built on first use.

        Raises:
            ConfigError: a required setting is missing or invalid.
        """
        return self._runtime.get()

    @property
    def engine(self) -> Engine:
        """The project's engine (see :func:`build_engine`)."""
        return self.runtime.engine

    def reset(self) -> None:
        """Forget the engine; the next request builds one from the settings again."""
        self._runtime.reset()

    def _build(self) -> Runtime:
        engine = build_engine()
        backend = _local_user_backend()
        if backend is not None:
            from .backends import LocalUsers

            if not any(isinstance(p, LocalUsers) for p in engine.plugins.manager.get_plugins()):
                engine.plugins.register(LocalUsers(backend), name="kc_django.local_users")
        return Runtime(engine, backend)

    def _setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting.startswith(PREFIX) or setting in ("KEYCLOAK", "AUTHENTICATION_BACKENDS"):
            self.reset()


def app_config() -> KeycloakConfig:
    """kc-django's app config.

    Raises:
        ImproperlyConfigured: ``kc_django`` is not in ``INSTALLED_APPS``.
    """
    try:
        return cast("KeycloakConfig", apps.get_app_config(APP_LABEL))
    except LookupError:
        raise ImproperlyConfigured(
            "kc-django is not installed: add 'kc_django' to INSTALLED_APPS"
        ) from None


def engine_of(request: Any = None) -> Engine:
    """The project's kc engine (for its :class:`~kc_core.Client`: ``engine_of().client``).

    ``request`` is accepted for symmetry with the other adapters; there is one engine per
    project.

    Raises:
        ImproperlyConfigured: ``kc_django`` is not in ``INSTALLED_APPS``.
        ConfigError: a required setting is missing or invalid.
    """
    return app_config().engine
