"""kc-django example: ``python examples/django/manage.py runserver 127.0.0.1:8000``.

A public home page, a profile behind a login, an admin page behind a realm role, a
bearer-token JSON API and a logout form (with Django's CSRF token). It runs against the
test realm (``kc_core/testing/realm.json``) at ``$KEYCLOAK_URL`` (default
``http://127.0.0.1:18080``); any ``KEYCLOAK_*`` environment variable overrides a setting.

In production, serve ``kc_example.wsgi`` with several workers and the Redis token store
(``KEYCLOAK_TOKEN_STORE``; the default memory store serves one process only)::

    cd examples/django
    DJANGO_SECRET_KEY=... KEYCLOAK_TOKEN_STORE=redis://127.0.0.1:6379/0 \
        gunicorn -w 3 -b 127.0.0.1:8000 kc_example.wsgi
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kc_example.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
