"""A Flask app imports no other web framework (adapters' entry points load lazily).

Run in a fresh interpreter, where ``sys.modules`` shows what building the app imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FRAMEWORKS = {"bottle", "django", "fastapi", "pyramid", "starlette", "webob"}

PROBE = """
import json, sys
from flask import Flask
from kc_core import Config
from kc_flask import Keycloak, engine_of

app = Flask("probe")
app.config["SECRET_KEY"] = "probe-secret"
Keycloak(app, config=Config(server_url="http://127.0.0.1:9", realm="r", client_id="c"))
with app.test_request_context("/private"):
    from flask import request
    engine_of(app).plugins.adapter_for(request._get_current_object())
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def test_building_a_flask_app_imports_no_other_framework() -> None:
    pytest.importorskip("kc_flask", reason="pip install ./kc_plugins/flask")
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    imported = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert "flask" in imported
    assert imported.isdisjoint(FRAMEWORKS), sorted(imported & FRAMEWORKS)
