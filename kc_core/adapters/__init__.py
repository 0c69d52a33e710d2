"""The adapter toolkit: what every framework adapter shares, written once.

An adapter (``kc_plugins/<framework>``) implements the hooks of :mod:`kc_core.hookspecs` and
wraps the engine in its framework's idioms. What is not framework glue lives here, one module
per topic (every name is imported from the package: ``from kc_core.adapters import X``):

- :mod:`.decorators`: :class:`ViewDecorators`: ``login_required``, ``roles_required`` and
  ``bearer_required`` from the adapter's one ``protect(requirement)``, each keeping the view's
  exact type (:func:`view_decorators`; their types :class:`ViewDecorator`,
  :class:`LoginRequired`, :class:`RolesRequired`, :class:`BearerRequired`), and
  :class:`RequirementShorthands`, the same three for dependencies (``require_login`` ...);
  :func:`requirement_for`: permission strings (``role:reader``) as requirements;
- :mod:`.users`: :class:`KeycloakUserBase` and :class:`AnonymousRoles`: the user objects' role
  API (``has_role("realm:admin")``, ``realm_roles``, ``client_roles(id)``), and
  :func:`role_names` for frameworks that speak in scopes or principals;
  :class:`UserMemo`: one user object per identity the engine built;
  :class:`RequestGuard`: the engine's guard of one request, asked once, and its user;
  :func:`set_changed`: a model's fields set where they differ;
- :mod:`.settings`: :class:`SettingsReader`: the client and engine settings from the
  framework's own configuration, a :class:`~kc_core.ConfigError` naming the key as the
  framework spells it (and :func:`settings_file`: ``keycloak.json``); :data:`SETTING_NAMES`:
  every setting; :func:`adapter_registration` and :func:`adapter_engine`: the adapter's
  plugins and engine; :class:`BuiltOnce`: an engine built from the settings on first use,
  rebuilt after a reset; :func:`configured_engine` (an engine setting) and
  :func:`single_client_config` (an engine's one client);
- :mod:`.hooks`: :func:`response_hooks`, :func:`environ_hooks`, :func:`wsgi_header_hook`,
  :func:`request_attribute`, :func:`request_call` (a hook answering ``request.<method>()``),
  :func:`first_values`, :func:`urlencoded_values` and :func:`wsgi_environ_key`: what every
  hook module repeats; :func:`start_response_adding`: a WSGI middleware's way to send the
  guard's headers; :class:`ResponseTemplates`: repeated refusals built once, then copied
  (:func:`copied`);
- :mod:`.endpoints`: :data:`ENDPOINTS` (of :class:`Endpoint`): the engine's four endpoints,
  for an adapter's routes; :func:`endpoint_view`: a named view per endpoint;
  :func:`read_form_body`: the urlencoded body of an endpoint's POST (at most
  :data:`MAX_FORM_BYTES`), for async adapters;
- :mod:`.seed`: :class:`SeedAction` and :func:`needs_login`: what the seed middlewares (every
  page needs a login) decide for a request, and :func:`seed_guard` for an async one;
  :data:`SEED_ARGUMENTS`: their arguments.

Only :mod:`.endpoints` imports another of them (:mod:`.hooks`, to read a body). The toolkit
imports no framework and nothing of the engine but its value types.
"""

from __future__ import annotations

from .decorators import (
    BearerRequired,
    LoginRequired,
    RequirementShorthands,
    RolesRequired,
    ViewDecorator,
    ViewDecorators,
    requirement_for,
    view_decorators,
)
from .endpoints import ENDPOINTS, MAX_FORM_BYTES, Endpoint, endpoint_view, read_form_body
from .hooks import (
    ResponseTemplates,
    copied,
    environ_hooks,
    first_values,
    request_attribute,
    request_call,
    response_hooks,
    start_response_adding,
    urlencoded_values,
    wsgi_environ_key,
    wsgi_header_hook,
)
from .seed import SEED_ARGUMENTS, SeedAction, needs_login, seed_guard
from .settings import (
    SETTING_NAMES,
    BuiltOnce,
    SettingsReader,
    adapter_engine,
    adapter_registration,
    configured_engine,
    settings_file,
    single_client_config,
)
from .users import (
    AnonymousRoles,
    KeycloakUserBase,
    RequestGuard,
    UserMemo,
    role_names,
    set_changed,
)

__all__ = [
    "ENDPOINTS",
    "MAX_FORM_BYTES",
    "SEED_ARGUMENTS",
    "SETTING_NAMES",
    "AnonymousRoles",
    "BearerRequired",
    "BuiltOnce",
    "Endpoint",
    "KeycloakUserBase",
    "LoginRequired",
    "RequestGuard",
    "RequirementShorthands",
    "ResponseTemplates",
    "RolesRequired",
    "SeedAction",
    "SettingsReader",
    "UserMemo",
    "ViewDecorator",
    "ViewDecorators",
    "adapter_engine",
    "adapter_registration",
    "configured_engine",
    "copied",
    "endpoint_view",
    "environ_hooks",
    "first_values",
    "needs_login",
    "read_form_body",
    "request_attribute",
    "request_call",
    "requirement_for",
    "response_hooks",
    "role_names",
    "seed_guard",
    "set_changed",
    "settings_file",
    "single_client_config",
    "start_response_adding",
    "urlencoded_values",
    "view_decorators",
    "wsgi_environ_key",
    "wsgi_header_hook",
]
