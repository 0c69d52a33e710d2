"""docs/django.md's settings and URLconf on a fresh ``django-admin startproject``.

The blocks marked ``<!-- tested: settings.py -->`` and ``<!-- tested: urls.py -->`` in the
docs are what a user copies: appended to (settings) or replacing (URLconf) the generated
files, ``manage.py check`` must find no issue: the admin's checks (``admin.E408``: Django's
``AuthenticationMiddleware``) and kc's own (``kc_django.W003``: the admin's password form).
No Keycloak is needed: the checks use no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kc_django_docs import docs_blocks


def start_project(root: Path) -> Path:
    root.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "shop", str(root)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return root


def check(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYCLOAK_CLIENT_SECRET": "a-secret-from-the-environment"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_docs_settings_pass_manage_py_check_on_a_fresh_startproject(tmp_path: Path) -> None:
    blocks = docs_blocks()
    assert {"settings.py", "urls.py"} <= set(blocks), blocks.keys()
    root = start_project(tmp_path / "project")
    settings = root / "shop" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + blocks["settings.py"])
    (root / "shop" / "urls.py").write_text(blocks["urls.py"])
    done = check(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout

    urls = root / "shop" / "urls.py"
    urls.write_text(urls.read_text().replace("admin.site.login = admin_login", ""))
    unreplaced = check(root)
    assert unreplaced.returncode == 0
    assert "kc_django.W003" in unreplaced.stderr + unreplaced.stdout

    # The order the docs gave before: Django's AuthenticationMiddleware replaced by kc's.
    settings.write_text(
        settings.read_text()
        + '\nMIDDLEWARE.remove("django.contrib.auth.middleware.AuthenticationMiddleware")\n'
    )
    broken = check(root)
    assert broken.returncode != 0
    assert "admin.E408" in broken.stderr + broken.stdout
