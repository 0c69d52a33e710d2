"""Django's admin behind Keycloak, roles mapped to local users, refusals through ``handler403``.

Against the real Keycloak: the role mapped to ``is_staff`` is a realm role the test creates
and grants with the admin API (the realm file stays as it is), and removes afterwards.
The admin is mounted at ``/django-admin/`` in the test project, with its login and logout
replaced as docs/django.md says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

BACKEND = "kc_django.backends.KeycloakBackend"
#: The order docs/django.md gives (Django's AuthenticationMiddleware stays, for the admin).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "kc_django.middleware.KeycloakMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


def fresh() -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.mark.usefixtures("database")
def test_the_mapped_role_reaches_the_admin_and_is_kept_in_step_at_each_login(
    project: Callable[..., None],
    log_in: Callable[..., Any],
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    users = get_user_model()._default_manager
    users.filter(username__in=["bob", "carol"]).delete()
    with keycloak_admin.realm_role(keycloak.realm, "bob") as role:
        project(
            keycloak_extra={
                "STAFF_ROLES": [f"realm:{role}"],
                "SUPERUSER_ROLES": f"realm:{role}",
                "GROUP_ROLES": {"kc-editors": [f"realm:{role}"], "kc-readers": ["kc-api:reader"]},
            },
            AUTHENTICATION_BACKENDS=[BACKEND],
            MIDDLEWARE=MIDDLEWARE,
        )
        bob = fresh()
        visitor = bob.get("/django-admin/")
        assert visitor.status_code == 302
        assert visitor["Location"] == "/django-admin/login/?next=/django-admin/"
        to_keycloak = bob.get(visitor["Location"])
        assert to_keycloak["Location"] == "/kc/login?next=%2Fdjango-admin%2F"
        done = log_in(bob, "/django-admin/", "bob")
        assert done.callback["Location"] == "/django-admin/"
        index = bob.get("/django-admin/")
        assert index.status_code == 200
        assert b"Site administration" in index.content
        assert b"/django-admin/auth/user/" in index.content, "a superuser sees every model"
        record = users.get(username="bob")
        assert (record.is_staff, record.is_superuser) == (True, True)
        assert set(record.groups.values_list("name", flat=True)) == {"kc-editors", "kc-readers"}

        carol = fresh()
        log_in(carol, "/private", "carol")
        refused = carol.get("/django-admin/", follow=True)
        assert refused.status_code == 403
        assert b"carol may not use the administration site" in refused.content
        assert not users.get(username="carol").is_staff

        keycloak_admin.revoke_realm_role(keycloak.realm, "bob", role)
        again = fresh()
        log_in(again, "/private", "bob")
        assert again.get("/django-admin/", follow=True).status_code == 403
        record = users.get(username="bob")
        assert (record.is_staff, record.is_superuser) == (False, False)
        assert set(record.groups.values_list("name", flat=True)) == {"kc-readers"}


@pytest.mark.usefixtures("database")
def test_local_users_carry_their_keycloak_roles(
    project: Callable[..., None], access_token: Callable[[str], str]
) -> None:
    project(AUTHENTICATION_BACKENDS=[BACKEND], MIDDLEWARE=MIDDLEWARE)
    from django.test import RequestFactory
    from kc_django.middleware import KeycloakMiddleware

    seen: dict[str, Any] = {}

    def view(request: Any) -> Any:
        from django.http import HttpResponse

        user = request.user
        seen.update(
            local=isinstance(user, get_user_model()),
            admin=user.has_role("realm:admin"),
            reader=user.has_role("kc-api:reader"),
            realm=user.keycloak.realm_roles,
        )
        return HttpResponse("ok")

    request = RequestFactory().get("/x", HTTP_AUTHORIZATION=f"Bearer {access_token('alice')}")
    KeycloakMiddleware(view)(request)
    assert (seen["local"], seen["admin"], seen["reader"]) == (True, True, True)
    assert {"admin", "user"} <= seen["realm"]


def test_an_apps_handler403_replaces_kcs_page(
    project: Callable[..., None],
    use_settings: Callable[..., None],
    log_in: Callable[..., Any],
    client: Client,
) -> None:
    project()
    log_in(client, "/private", "bob")
    page = client.get("/admin")
    assert page.status_code == 403
    assert page["Content-Type"] == "text/html; charset=utf-8"
    assert b"You are signed in as bob, but your account lacks a required role." in page.content
    assert b'<form method="post" action="/kc/logout">' in page.content
    assert b'name="csrfmiddlewaretoken"' in page.content
    api = client.get("/admin", HTTP_ACCEPT="application/json")
    assert api.status_code == 403
    assert api.json()["error"] == "forbidden"

    use_settings(ROOT_URLCONF="kc_django_test_handler403")  # the same engine and session
    own = client.get("/admin")
    assert own.status_code == 403
    assert own.content == b"Not for you: your account lacks a required role"
    assert client.get("/admin", HTTP_ACCEPT="application/json").json()["error"] == "forbidden"


def test_the_admin_login_passes_djangos_login_required_middleware() -> None:
    import django
    from kc_django.admin import admin_login, admin_logout

    if django.VERSION < (5, 1):
        pytest.skip("LoginRequiredMiddleware came with Django 5.1")

    assert getattr(admin_login, "login_required", True) is False
    assert getattr(admin_logout, "login_required", True) is False
