"""The test project's URLconf with the ``handler403`` docs/django.md shows (run from the docs)."""

from __future__ import annotations

from kc_django_docs import run_block
from kc_django_test_project import urlpatterns

__all__ = ["urlpatterns"]

run_block("handler403", globals())  # defines handler403
