# The earlier library's program (shared/seed/repo-examples/django/mysite/views.py), a test input: only its imports are changed
# (keycloak.* -> kc names). Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
# -*- coding: utf-8 -*-
from django.http import HttpResponse


def home(request):
    user = request.session["user"]
    return HttpResponse(user)


def logout(request):
    return HttpResponse("User logged out successfully")
