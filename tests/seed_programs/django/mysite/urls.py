# The earlier library's program (shared/seed/repo-examples/django/mysite/urls.py), a test input: only its imports are changed
# (keycloak.* -> kc names). Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
# -*- coding: utf-8 -*-
"""mysite URL Configuration

The `urlpatterns` list routes URLs to views. For more information please see:
    https://docs.djangoproject.com/en/3.0/topics/http/urls/
Examples:
Function views
    1. Add an import:  from my_app import views
    2. Add a URL to urlpatterns:  path('', views.home, name='home')
Class-based views
    1. Add an import:  from other_app.views import Home
    2. Add a URL to urlpatterns:  path('', Home.as_view(), name='home')
Including another URLconf
    1. Import the include() function: from django.urls import include, path
    2. Add a URL to urlpatterns:  path('blog/', include('blog.urls'))
"""
# from django.contrib import admin
from django.urls import path

from .views import home, logout


urlpatterns = [
    # path("admin/", admin.site.urls),
    path("home", home),
    path("logout", logout),
]
