"""The WSGI app of the example project, for a production server::

    cd examples/django
    DJANGO_SECRET_KEY=... KEYCLOAK_TOKEN_STORE=redis://127.0.0.1:6379/0 \
        gunicorn -w 3 -b 127.0.0.1:8000 kc_example.wsgi

Several worker processes need the Redis token store: the default memory store serves one
process only (see docs/token-stores.md).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kc_example.settings")

application = get_wsgi_application()
