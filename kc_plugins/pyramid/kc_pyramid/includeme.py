"""``config.include("kc_pyramid")``: the engine, its routes and the security policy.

The engine is built from the ``keycloak.*`` settings (see :mod:`kc_pyramid.config`), or
given whole as ``keycloak.engine``; ``keycloak.store``, ``keycloak.plugins`` and
``keycloak.enforcer`` take kc objects. Each of these four may be the object or its dotted
name (``myapp.auth.token_store``), as usual for Pyramid settings.
"""

from __future__ import annotations

from typing import Any

from pyramid.exceptions import ConfigurationError  # type: ignore[import-untyped]
from pyramid.interfaces import ISessionFactory  # type: ignore[import-untyped]
from pyramid.security import NO_PERMISSION_REQUIRED  # type: ignore[import-untyped]
from pyramid.viewderivers import INGRESS  # type: ignore[import-untyped]

from kc_core import KeycloakError
from kc_core.adapters import ENDPOINTS, adapter_engine, adapter_registration
from kc_core.engine import Engine, Requirement

from . import plugin as pyramid_plugin
from .config import client_config, engine_settings, keycloak_settings, trusted_hosts
from .security import ENGINE_KEY, KeycloakSecurityPolicy
from .views import (
    backchannel_logout_view,
    callback_view,
    forbidden_view,
    kc_secured_view,
    login_view,
    logout_view,
)

__all__ = ["add_keycloak_permission", "build_engine", "includeme", "with_pyramid_adapter"]

with_pyramid_adapter = adapter_registration(pyramid_plugin, "pyramid")
_POLICY_KEY = "kc.security_policy"
# After every action of the default order: the app may set its session factory later.
_AFTER_APP_ACTIONS = 10


def includeme(config: Any) -> None:
    """Set up kc on a Pyramid app: ``config.include("kc_pyramid")``.

    Adds the engine's routes under ``keycloak.prefix`` (``/kc``), sets
    :class:`~kc_pyramid.KeycloakSecurityPolicy` and a forbidden view giving the engine's
    answers, and the ``config.add_keycloak_permission(name, requirement)`` directive.
    The app's own ``set_security_policy`` or forbidden view, called after the include,
    win over these.

    Raises:
        ConfigError: a setting is missing or invalid (at include time).
        ConfigurationError: at commit, when no session factory is registered and the
            client is not bearer-only; or when included with a ``route_prefix``.
    """
    if config.route_prefix:
        raise ConfigurationError(
            "include kc_pyramid without route_prefix: set keycloak.prefix instead "
            "(the engine builds its redirects from it)"
        )
    engine = build_engine(config)
    registry = config.registry
    registry[ENGINE_KEY] = engine
    sessionless = _bearer_only(engine)
    registry[pyramid_plugin.SESSIONLESS_KEY] = sessionless
    registry[pyramid_plugin.TRUSTED_HOSTS_KEY] = trusted_hosts(config.get_settings() or {})

    policy = KeycloakSecurityPolicy()
    registry[_POLICY_KEY] = policy
    config.set_security_policy(policy)
    config.add_forbidden_view(forbidden_view)
    # Outside Pyramid's permission check, to answer kc's refusals without raising them.
    config.add_view_deriver(kc_secured_view, under=INGRESS, over="secured_view")
    config.add_directive("add_keycloak_permission", add_keycloak_permission)

    views = (login_view, callback_view, logout_view, backchannel_logout_view)
    for endpoint, view in zip(ENDPOINTS, views, strict=True):
        name = f"keycloak.{endpoint.name}"
        config.add_route(name, f"{engine.settings.prefix}/{endpoint.path}")
        csrf = {"require_csrf": False} if endpoint.server_to_server else {}
        # Public whatever the app's default permission.
        config.add_view(view, route_name=name, permission=NO_PERMISSION_REQUIRED, **csrf)

    def check_session_factory() -> None:
        present = registry.queryUtility(ISessionFactory) is not None
        if not present and not sessionless:
            raise ConfigurationError(pyramid_plugin._NO_SESSION)
        registry[pyramid_plugin.SESSION_FACTORY_KEY] = present

    config.action(None, check_session_factory, order=_AFTER_APP_ACTIONS)


def add_keycloak_permission(config: Any, name: str, requirement: Requirement) -> None:
    """Directive: ``config.add_keycloak_permission("orders.write", Requirement(...))``.

    Views with ``permission="orders.write"`` then require it. Two apps' permissions of the
    same name conflict at commit, as Pyramid's own directives do.
    """
    if not isinstance(requirement, Requirement):
        raise ConfigurationError(f"{name!r} needs a kc_core.engine.Requirement")
    policy = config.registry[_POLICY_KEY]
    config.action(("kc_pyramid.permission", name), policy.add_permission, (name, requirement))


def build_engine(config: Any) -> Engine:
    """The engine from the app's settings (``keycloak.engine``, else ``keycloak.*`` values).

    Raises:
        ConfigError: a setting is missing or invalid.
    """
    settings = keycloak_settings(config.get_settings() or {})
    engine = config.maybe_dotted(settings.get("keycloak.engine"))
    if engine is not None and not isinstance(engine, Engine):
        raise ConfigurationError("keycloak.engine must be a kc_core.engine.Engine")
    # keycloak.plugins, .store and .enforcer: objects or dotted names, for a new engine only.
    names = () if engine is not None else ("plugins", "store", "enforcer")
    objects = {name: config.maybe_dotted(settings.get(f"keycloak.{name}")) for name in names}
    return adapter_engine(
        with_pyramid_adapter,
        lambda: client_config(settings),
        lambda: engine_settings(settings),
        engine=engine,
        **objects,
    )


def _bearer_only(engine: Engine) -> bool:
    try:
        return engine.client.config.bearer_only
    except KeycloakError:  # several tenants: assume some log browsers in
        return False
