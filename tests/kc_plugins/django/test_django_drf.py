"""kc-django's Django REST framework classes against the real Keycloak.

The views are in ``kc_django_test_drf`` (mounted at ``/drf/``); authentication is the
project's default: ``KeycloakAuthentication``, then DRF's ``SessionAuthentication``. The
client enforces CSRF as a browser's requests meet it (Django's test client skips it
otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

pytest.importorskip("rest_framework")

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def api() -> Client:
    """A client that meets Django's CSRF checks as a browser would."""
    return Client(enforce_csrf_checks=True, HTTP_HOST="localhost")


def test_no_token_and_a_garbage_token_get_401_with_the_bearer_challenge(
    project: Callable[..., None], api: Client
) -> None:
    project()
    missing = api.get("/drf/echo")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    garbage = api.get("/drf/echo", **bearer("garbage"))
    assert garbage.status_code == 401
    assert garbage["WWW-Authenticate"].startswith('Bearer realm="kc-test", error="invalid_token"')
    assert garbage.json()["detail"]


def test_a_bearer_post_needs_no_csrf_token(
    project: Callable[..., None], api: Client, access_token: Callable[[str], str]
) -> None:
    project()
    response = api.post(
        "/drf/echo", {"n": 1}, content_type="application/json", **bearer(access_token("bob"))
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"username": "bob", "posted": {"n": 1}}


def test_role_and_scope_permissions_give_403_without_them(
    project: Callable[..., None], api: Client, access_token: Callable[[str], str]
) -> None:
    project()
    bob, carol = bearer(access_token("bob")), bearer(access_token("carol"))
    assert api.get("/drf/admins", **bob).status_code == 403
    assert api.get("/drf/admins", **bearer(access_token("alice"))).json() == {"admin": True}
    assert api.get("/drf/readers", **bob).json() == {"reader": True}
    denied = api.get("/drf/readers", **carol)
    assert denied.status_code == 403
    assert denied.json() == {"detail": "requires the role kc-api:reader"}
    assert api.get("/drf/scoped", **carol).json() == {"scoped": True}
    assert api.get("/drf/needs-scope", **bob).status_code == 403
    assert api.get("/drf/readers").status_code == 401, "a visitor is not authenticated"


def test_the_login_session_keeps_drfs_csrf_rules(
    project: Callable[..., None], api: Client, log_in: Callable[..., Any]
) -> None:
    project()
    log_in(api, "/private", "bob")
    assert api.get("/drf/echo").json() == {"username": "bob", "bearer": False}
    refused = api.post("/drf/echo", {"n": 1}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    token = api.get("/logout-form").json()["csrfmiddlewaretoken"]
    allowed = api.post(
        "/drf/echo", {"n": 2}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code == 200, allowed.content
    assert allowed.json()["posted"] == {"n": 2}


@pytest.mark.usefixtures("offline_project")
def test_keycloak_unreachable_is_a_503_with_retry_after(api: Client) -> None:
    from test_django_integration import UNKNOWN_KEY_TOKEN

    response = api.get("/drf/echo", **bearer(UNKNOWN_KEY_TOKEN))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_the_openapi_schema_has_the_bearer_scheme_on_every_view() -> None:
    pytest.importorskip("drf_spectacular")
    from drf_spectacular.generators import SchemaGenerator

    schema: Any = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["securitySchemes"]["keycloak"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token issued by Keycloak (Authorization: Bearer).",
    }
    operation = schema["paths"]["/drf/echo"]["post"]
    assert {"keycloak": []} in operation["security"]


def test_the_docs_drf_settings_and_views_work_as_shown(
    project: Callable[..., None], access_token: Callable[[str], str]
) -> None:
    from django.conf import settings
    from kc_django_docs import run_block
    from rest_framework.test import APIRequestFactory

    shown = run_block("drf-settings")["REST_FRAMEWORK"]
    for key in ("DEFAULT_AUTHENTICATION_CLASSES", "DEFAULT_PERMISSION_CLASSES"):
        assert shown[key] == settings.REST_FRAMEWORK[key], "the suite runs the docs' settings"
    views = run_block("drf-views")
    project()
    factory = APIRequestFactory()
    bob, alice = bearer(access_token("bob")), bearer(access_token("alice"))

    def call(view: str, method: str, headers: dict[str, str], **extra: Any) -> Any:
        request = getattr(factory, method)("/docs", **headers, **extra)
        response = views[view].as_view()(request)
        response.render()
        return response

    assert call("Orders", "get", bob).data == {"orders": [], "user": "bob"}
    created = call("Orders", "post", bob, data={"n": 1}, format="json")
    assert (created.status_code, created.data) == (201, {"created": {"n": 1}})
    assert call("Orders", "get", bearer(access_token("carol"))).status_code == 403
    assert call("Orders", "get", {}).status_code == 401
    assert call("Reports", "get", bob).status_code == 403
    assert call("Reports", "get", alice).data == {"reports": []}
