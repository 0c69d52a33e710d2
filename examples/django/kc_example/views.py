"""Views of the example: public, logged-in, role-protected (a class view) and a JSON API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.generic import TemplateView
from kc_django import RolesRequiredMixin, bearer_required, login_required


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    roles = sorted(user.realm_roles)
    return render(request, "profile.html", {"claims": dict(user.claims), "roles": roles})


class AdminPage(RolesRequiredMixin, TemplateView):
    roles_required = ("realm:admin",)
    template_name = "admin.html"


@bearer_required(roles=["kc-api:reader"])
def reports(request: HttpRequest) -> JsonResponse:
    user: Any = request.user
    return JsonResponse({"reports": ["q1", "q2"], "reader": user.get_username()})
