"""URLs of the example: kc's endpoints under /kc/, and the example's pages."""

from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("profile", views.profile, name="profile"),
    path("admin", views.AdminPage.as_view(), name="admin"),
    path("api/reports", views.reports, name="reports"),
    path("kc/", include("kc_django.urls")),
]
