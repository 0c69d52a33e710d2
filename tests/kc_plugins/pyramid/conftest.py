"""Fixtures for kc-pyramid tests: a Pyramid app with one view per kind of protection.

``build_app`` makes the app from ``keycloak.*`` settings; served over real HTTP
(:func:`kc_core.testing.conformance.serve_wsgi`) it talks to the suite's real Keycloak, and
users log in on Keycloak's real form. Unit tests call it in-process with WebOb's
``Request.blank(...).get_response(app)`` and point it at a closed port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, ClassVar

import pytest
from kc_pyramid import bearer_required, login_required, roles_required
from pyramid.authorization import Allow, Authenticated
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.response import Response
from pyramid.security import forget
from pyramid.session import SignedCookieSessionFactory

from kc_core.engine import Requirement
from kc_core.testing.conformance import serve_wsgi
from kc_core.testing.server import KeycloakRealm

CLIENT_ID = "kc-web"
SECRET = "kc-web-secret"
SESSION_SECRET = "pyramid-test-session-secret"


def realm_settings(keycloak: KeycloakRealm, **extra: Any) -> dict[str, Any]:
    """``keycloak.*`` settings pointing an app at the test realm as kc-web."""
    return {
        "keycloak.server_url": keycloak.base_url,
        "keycloak.realm": keycloak.realm,
        "keycloak.client_id": CLIENT_ID,
        "keycloak.client_secret": SECRET,
        **extra,
    }


class Document:
    """A context with an ACL: writers of kc-api may edit, any logged-in user may read."""

    __acl__: ClassVar[list[tuple[str, str, str]]] = [
        (Allow, "role:kc-api:writer", "edit"),
        (Allow, Authenticated, "read"),
    ]

    def __init__(self, request: Any) -> None:
        self.request = request


class ClassView:
    """A view class: kc's decorators work on its methods too."""

    def __init__(self, request: Any) -> None:
        self.request = request

    @login_required
    def __call__(self) -> Any:
        return Response(f"class view of {self.request.identity.username}")


def build_app(settings: dict[str, Any], *, session: bool = True) -> Any:
    """The test app (WSGI); ``settings`` are the Pyramid settings."""
    with Configurator(settings=settings) as config:
        if session:
            config.set_session_factory(SignedCookieSessionFactory(SESSION_SECRET))
        config.include("kc_pyramid")
        config.add_keycloak_permission(
            "api.read", Requirement(roles=("kc-api:reader",), api=True, bearer_only=True)
        )

        def add(name: str, path: str, view: Any, factory: Any = None, **options: Any) -> None:
            config.add_route(name, path, factory=factory)
            config.add_view(view, route_name=name, **options)

        def home(request: Any) -> Any:
            identity = request.identity
            return {
                "user": None if identity is None else identity.username,
                "userid": request.authenticated_userid,
            }

        add("home", "/", home, renderer="json")
        add("public", "/public", lambda request: Response("public"))
        add("private", "/private", login_required(_page("private")))
        add("admin", "/admin", roles_required("realm:admin")(_page("admin")))
        add("perm_private", "/perm/private", _page("perm-private"), permission="authenticated")
        add("perm_admin", "/perm/admin", _page("perm-admin"), permission="role:realm:admin")
        add(
            "api_data", "/api/data", bearer_required(roles=["kc-api:reader"])(_api), renderer="json"
        )
        add("api_perm", "/api/perm", _api, permission="api.read", renderer="json")
        add("acl_edit", "/doc/edit", _page("edit"), permission="edit", factory=Document)
        add("acl_read", "/doc/read", _page("read"), permission="read", factory=Document)
        add("class_view", "/class", ClassView)
        add("forget", "/forget", _forget, request_method="POST")
        add("refused", "/refused", _refused)
        add("session_key", "/debug/session-key", _session_key, renderer="json")
        return config.make_wsgi_app()


def _page(name: str) -> Callable[[Any], Any]:
    def view(request: Any) -> Any:
        return Response(f"{name} page of {request.identity.username}")

    return view


def _api(request: Any) -> Any:
    return {"reader": request.identity.username, "userid": request.authenticated_userid}


def _forget(request: Any) -> Any:
    return Response("forgotten", headers=forget(request))


def _refused(request: Any) -> Any:
    raise HTTPForbidden("the app says no")


def _session_key(request: Any) -> Any:
    data = request.session.get("kc")
    return {"key": data["key"] if isinstance(data, dict) else None}


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Serve WSGI apps over HTTP on free ports (stopped after the test); returns the URL."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_wsgi(app))


@pytest.fixture
def offline_settings(closed_port: int) -> dict[str, Any]:
    """Settings naming a Keycloak that is not there: any call to it fails fast."""
    return {
        "keycloak.server_url": f"http://127.0.0.1:{closed_port}",
        "keycloak.realm": "kc-test",
        "keycloak.client_id": CLIENT_ID,
        "keycloak.client_secret": SECRET,
        "keycloak.connect_timeout": "0.5",
        "keycloak.retries": "0",
    }
