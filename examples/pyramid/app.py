"""A Pyramid app on Keycloak with kc-pyramid: pages for users and admins, and a JSON API.

Run it against the demo realm (``python examples/demo.py`` starts Keycloak with it), or any
realm with a confidential client whose redirect URI is ``http://localhost:6543/kc/callback``::

    KEYCLOAK_SERVER_URL=http://localhost:8080 python examples/pyramid/app.py

Then open http://localhost:6543/. ``SESSION_SECRET`` (or the ``session.secret`` setting) is
required: it encrypts the session cookie. ``create_app(settings)`` builds the WSGI app for a
server of your choice (``keycloak.*`` settings, as in an ``.ini`` file); ``KEYCLOAK_SERVER_URL``,
``KEYCLOAK_TOKEN_STORE``, ``KEYCLOAK_TRUSTED_HOSTS``, ``KEYCLOAK_PUBLIC_URL`` (behind a proxy,
see docs/pyramid.md) ... in the environment set the ``keycloak.*`` setting of the same name.

In production, run it under several workers with the Redis token store::

    cd examples/pyramid
    SESSION_SECRET=... KEYCLOAK_TOKEN_STORE=redis://127.0.0.1:6379/0 \
        gunicorn -w 3 -b 127.0.0.1:6543 'app:create_app()'

or in one process with threads, where the memory store is enough::

    SESSION_SECRET=... waitress-serve --threads 8 --listen 127.0.0.1:6543 --call app:create_app

The default memory store serves one process only: under several workers each has its own,
and a login on one is unknown to the others (kc then shows an error page naming the memory
token store; see docs/token-stores.md).
"""

from __future__ import annotations

import os
from html import escape
from typing import Any
from wsgiref.simple_server import make_server

from kc_pyramid import SealedCookieSessionFactory, bearer_required
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.response import Response

DEFAULTS = {
    "keycloak.server_url": "http://localhost:8080",
    "keycloak.realm": "kc-test",
    "keycloak.client_id": "kc-web",
    "keycloak.client_secret": "kc-web-secret",
}
#: ``keycloak.*`` settings a ``KEYCLOAK_<NAME>`` environment variable sets (deploy files set these).
FROM_ENVIRONMENT = (
    "server_url",
    "realm",
    "client_id",
    "client_secret",
    "token_store",
    "public_url",
    "trusted_hosts",
    "logout_mode",
)


def home(request: Any) -> Response:
    user = request.identity
    if user is None:
        return _page("Welcome, visitor", '<a href="/profile">Log in</a>')
    # The engine checks the Origin of a logout post; Pyramid's CSRF token is the app's own.
    logout = (
        f'<form method="post" action="{request.route_path("keycloak.logout")}">'
        f'<input type="hidden" name="csrf_token" value="{get_csrf_token(request)}">'
        "<button>Log out</button></form>"
    )
    admin = '<a href="/admin">Admin</a>' if request.has_permission("role:realm:admin") else ""
    return _page(f"Welcome, {escape(user.name or user.username or '')}", admin + logout)


def profile(request: Any) -> Response:
    user = request.identity
    roles = ", ".join(sorted(user.realm_roles)) or "none"
    return _page(f"Profile of {escape(user.username or '')}", f"Realm roles: {escape(roles)}")


def admin(request: Any) -> Response:
    return _page("Admin", f"Only realm admins see this, {escape(request.identity.username)}.")


@bearer_required(roles=["kc-api:reader"])
def reports(request: Any) -> dict[str, Any]:
    return {"reports": ["2024-q1", "2024-q2"], "reader": request.identity.username}


def _page(title: str, body: str) -> Response:
    return Response(f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{body}</p>")


def settings_from_environment() -> dict[str, str]:
    """The ``keycloak.*`` settings the environment gives (``KEYCLOAK_TOKEN_STORE`` ...)."""
    return {
        f"keycloak.{name}": os.environ[f"KEYCLOAK_{name.upper()}"]
        for name in FROM_ENVIRONMENT
        if os.environ.get(f"KEYCLOAK_{name.upper()}")
    }


def create_app(settings: dict[str, Any] | None = None) -> Any:
    """The example app as a WSGI callable (``gunicorn 'app:create_app()'``).

    ``settings`` win over the environment, which wins over the defaults.
    """
    merged = {**DEFAULTS, **settings_from_environment(), **(settings or {})}
    secret = merged.pop("session.secret", None) or os.environ.get("SESSION_SECRET")
    if not secret:
        raise SystemExit(
            "examples/pyramid: set SESSION_SECRET (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`): it encrypts the session cookie"
        )
    with Configurator(settings=merged) as config:
        # Encrypted and HttpOnly: the session holds the login's PKCE verifier and nonce.
        config.set_session_factory(SealedCookieSessionFactory(secret))
        config.include("kc_pyramid")
        config.add_route("home", "/")
        config.add_view(home, route_name="home")
        config.add_route("profile", "/profile")
        config.add_view(profile, route_name="profile", permission="authenticated")
        config.add_route("admin", "/admin")
        config.add_view(admin, route_name="admin", permission="role:realm:admin")
        config.add_route("reports", "/api/reports")
        config.add_view(reports, route_name="reports", renderer="json")
        return config.make_wsgi_app()


if __name__ == "__main__":
    # The only Host kc builds URLs from when keycloak.public_url is unset (others answer 400).
    trusted_hosts = os.environ.get("KEYCLOAK_TRUSTED_HOSTS") or "localhost:6543"
    app = create_app({"keycloak.trusted_hosts": trusted_hosts})
    with make_server("localhost", 6543, app) as server:
        print("Serving on http://localhost:6543/")
        server.serve_forever()
