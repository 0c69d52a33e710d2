"""An app's own forbidden view replaces kc's answers, for permissions and decorators alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from conftest import SESSION_SECRET, build_app, realm_settings
from kc_pyramid import bearer_required
from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory

from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

TIMEOUT = 15.0


def app_with_its_own_forbidden_view(keycloak: KeycloakRealm) -> Any:
    with Configurator(settings=realm_settings(keycloak)) as config:
        config.set_session_factory(SignedCookieSessionFactory(SESSION_SECRET))
        config.include("kc_pyramid")

        def forbidden(exc: Any, request: Any) -> Any:
            kc_answer = exc.result.response  # kc's own answer stays on the exception
            return Response(f"the app's page, kc said {kc_answer.status_code}", status=403)

        config.add_forbidden_view(forbidden)  # after the include: replaces kc's
        config.add_route("perm", "/perm/admin")
        config.add_view(
            lambda r: Response("admin"), route_name="perm", permission="role:realm:admin"
        )
        config.add_route("decorated", "/api/data")
        config.add_view(
            bearer_required(roles=["kc-api:reader"])(lambda r: Response("data")),
            route_name="decorated",
        )
        return config.make_wsgi_app()


def test_the_apps_forbidden_view_answers_refused_permissions_and_decorators(
    keycloak: KeycloakRealm, serve: Callable[[Any], str], access_token: Callable[..., str]
) -> None:
    url = serve(app_with_its_own_forbidden_view(keycloak))
    carol = {"Authorization": f"Bearer {access_token('carol')}"}  # neither admin nor reader
    for path in ("/perm/admin", "/api/data"):
        answer = requests.get(f"{url}{path}", headers=carol, timeout=TIMEOUT)
        assert (answer.status_code, answer.text) == (403, "the app's page, kc said 403"), path
    missing = requests.get(f"{url}/api/data", timeout=TIMEOUT)
    assert (missing.status_code, missing.text) == (403, "the app's page, kc said 401")
    bob = {"Authorization": f"Bearer {access_token('bob')}"}
    assert requests.get(f"{url}/api/data", headers=bob, timeout=TIMEOUT).text == "data"


def test_kcs_forbidden_view_keeps_its_answers_without_one_of_the_app(
    keycloak: KeycloakRealm, serve: Callable[[Any], str], access_token: Callable[..., str]
) -> None:
    url = serve(build_app(realm_settings(keycloak)))
    missing = requests.get(f"{url}/api/data", timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    carol = {"Authorization": f"Bearer {access_token('carol')}"}
    refused = requests.get(f"{url}/api/data", headers=carol, timeout=TIMEOUT)
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
