"""The Django project the kc-django tests serve: its views and URLconf (``ROOT_URLCONF``).

Settings are configured in this folder's ``conftest.py``; tests change them with
``override_settings`` (kc-django rebuilds its engine when a ``KEYCLOAK*`` setting changes).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.contrib import admin as django_admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import include, path
from django.views import View
from kc_django import (
    BearerRequiredMixin,
    LoginRequiredMixin,
    RolesRequiredMixin,
    access_token_of,
    bearer_required,
    login_required,
    roles_required,
)
from kc_django.admin import admin_login, admin_logout

# As docs/django.md says: the admin's login and logout are Keycloak's.
django_admin.site.login = admin_login  # type: ignore[method-assign]
django_admin.site.logout = admin_logout  # type: ignore[method-assign]


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


def public(request: HttpRequest) -> HttpResponse:
    return HttpResponse("public")


def whoami(request: HttpRequest) -> JsonResponse:
    """A public page that still knows a logged-in user (lazy ``request.user``)."""
    user: Any = request.user
    return JsonResponse({"authenticated": user.is_authenticated, "username": user.get_username()})


@login_required
def private(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    return HttpResponse(f"private page of {user.get_username()}")


@roles_required("realm:admin")
def admin(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    return HttpResponse(f"admin page of {user.get_username()}")


@bearer_required(roles=["kc-api:reader"])
def api_data(request: HttpRequest) -> JsonResponse:
    user: Any = request.user
    return JsonResponse({"data": [1, 2, 3], "reader": user.get_username()})


@bearer_required
def api_me(request: HttpRequest) -> JsonResponse:
    user: Any = request.user
    return JsonResponse(
        {"username": user.get_username(), "token": access_token_of(request) is not None}
    )


@login_required
async def private_async(request: HttpRequest) -> HttpResponse:
    user: Any = await request.auser()  # type: ignore[attr-defined]
    return HttpResponse(f"async page of {user.get_username()}")


def logout_form(request: HttpRequest) -> JsonResponse:
    """The CSRF token a logout form would carry (``{% csrf_token %}``)."""
    return JsonResponse({"csrfmiddlewaretoken": get_token(request)})


class PrivateView(LoginRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        return HttpResponse(f"class view of {user.get_username()}")


class AdminView(RolesRequiredMixin, View):
    roles_required = ("realm:admin",)

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("class admin view")


class ApiView(BearerRequiredMixin, View):
    roles_required = ("kc-api:writer",)

    def get(self, request: HttpRequest) -> JsonResponse:
        user: Any = request.user
        return JsonResponse({"writer": user.get_username()})


urlpatterns = [
    path("", home),
    path("public", public),
    path("whoami", whoami),
    path("private", private),
    path("admin", admin),
    path("api/data", api_data),
    path("api/me", api_me),
    path("async/private", private_async),
    path("logout-form", logout_form),
    path("class/private", PrivateView.as_view()),
    path("class/admin", AdminView.as_view()),
    path("class/api", ApiView.as_view()),
    path("kc/", include("kc_django.urls")),
    path("django-admin/", django_admin.site.urls),
]
if importlib.util.find_spec("rest_framework") is not None:
    urlpatterns.append(path("drf/", include("kc_django_test_drf")))
