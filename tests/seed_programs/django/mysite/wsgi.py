# The earlier library's program (shared/seed/repo-examples/django/mysite/wsgi.py), a test input: only its imports are changed
# (keycloak.* -> kc names). Do not tidy it: tests/integration/test_seed_programs.py runs it.
# ruff: noqa
# fmt: off
# -*- coding: utf-8 -*-
"""
WSGI config for mysite project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/3.0/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
