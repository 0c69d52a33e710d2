"""kc's adapter conformance kit, run against Pyramid apps built with kc-pyramid.

Twice: views protected by kc's decorators, and views protected the Pyramid way
(``permission=`` answered by :class:`~kc_pyramid.KeycloakSecurityPolicy`, refusals sent by
kc's forbidden view).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import pytest
from kc_pyramid import login_required, roles_required
from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory

from kc_core.engine import Engine
from kc_core.testing.conformance import AdapterConformance, serve_wsgi

pytestmark = pytest.mark.integration


def conformance_app(engine: Engine, *, with_permissions: bool) -> Any:
    """The routes the kit expects: ``/``, ``/public``, ``/private`` and ``/admin``."""
    with Configurator(settings={"keycloak.engine": engine}) as config:
        # HttpOnly and Secure (the kit's browser still sends it to 127.0.0.1 over http).
        config.set_session_factory(
            SignedCookieSessionFactory("conformance-secret", httponly=True, secure=True)
        )
        config.include("kc_pyramid")

        def page(name: str) -> Any:
            return lambda request: Response(f"{name} page of {request.identity.username}")

        config.add_route("home", "/")
        config.add_view(lambda request: Response("home"), route_name="home")
        config.add_route("public", "/public")
        config.add_view(lambda request: Response("public"), route_name="public")
        config.add_route("private", "/private")
        config.add_route("admin", "/admin")
        if with_permissions:
            config.add_view(page("private"), route_name="private", permission="authenticated")
            config.add_view(page("admin"), route_name="admin", permission="role:realm:admin")
        else:
            config.add_view(login_required(page("private")), route_name="private")
            config.add_view(roles_required("realm:admin")(page("admin")), route_name="admin")
        return config.make_wsgi_app()


class TestPyramidDecorators(AdapterConformance):
    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        return serve_wsgi(conformance_app(engine, with_permissions=False))


class TestPyramidPermissions(AdapterConformance):
    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        return serve_wsgi(conformance_app(engine, with_permissions=True))
