"""Each example app's own test module, written with the user test kit, passes on its own.

The examples' tests are what a user would write (``examples/<framework>/test_app.py`` with
its ``conftest.py``); each runs in its own pytest process, as ``pytest examples/flask``
would, so their ``app`` modules and Django's settings never meet. No Keycloak is involved.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUITES = ["flask", "starlette", "fastapi", "django", "pyramid", "bottle_adapter"]
_TIMEOUT = 120


@pytest.mark.parametrize("name", SUITES)
def test_example_suite_passes_with_the_user_test_kit(name: str) -> None:
    folder = EXAMPLES / name
    expected = sum(p.read_text().count("\ndef test_") for p in folder.glob("test_*.py"))
    assert expected >= 6, f"{folder} should hold the example's own tests"
    # The user's environment only: no Keycloak settings of this suite leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYCLOAK_", "DJANGO_"))}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            str(folder),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(rf"\b{expected} passed\b", summary), summary
    assert "skipped" not in summary, summary
