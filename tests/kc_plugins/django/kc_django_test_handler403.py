"""The test project's URLconf with a ``handler403`` of its own (``ROOT_URLCONF`` in a test)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseForbidden
from kc_django_test_project import urlpatterns

__all__ = ["handler403", "urlpatterns"]


def handler403(request: HttpRequest, exception: Exception) -> HttpResponseForbidden:
    return HttpResponseForbidden(f"the project's own 403: {exception}")
