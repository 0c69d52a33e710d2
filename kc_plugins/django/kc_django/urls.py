"""The engine's endpoints: include them at the engine's prefix (``KEYCLOAK_PREFIX``, ``/kc``)::

    urlpatterns = [
        path("kc/", include("kc_django.urls")),
        ...
    ]

URL names (namespace ``keycloak``): ``keycloak:login``, ``keycloak:callback``,
``keycloak:logout`` and ``keycloak:backchannel_logout``. ``manage.py check`` reports an
include at another path than the prefix (the callback URL sent to Keycloak is built from
the prefix).
"""

from __future__ import annotations

from django.urls import path

from kc_core.adapters import ENDPOINTS

from . import views

app_name = "keycloak"

urlpatterns = [path(e.path, getattr(views, e.name), name=e.name) for e in ENDPOINTS]
