"""The benchmark scripts still run: each one, a few calls per row, prints its verdicts.

Bounded (a few calls, one round, all scripts at once in subprocesses); the figures of such
a run mean nothing, only that every row answers as expected and every target is judged.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FEW = ["--number", "20", "--rounds", "1"]
SCRIPTS = {
    "bench_tokens.py": [*FEW, "--cache-size", "8"],
    "bench_flask.py": FEW,
    "bench_starlette.py": FEW,
    "bench_django.py": FEW,
    "bench_pyramid.py": FEW,
    "bench_peers.py": FEW,
}
PEERS = ("fastapi_keycloak_middleware", "authlib", "mozilla_django_oidc", "rest_framework")


def test_every_benchmark_script_runs_and_judges_its_targets() -> None:
    scripts = dict(SCRIPTS)
    if not all(importlib.util.find_spec(name) for name in PEERS):
        del scripts["bench_peers.py"]  # its peers live in benchmarks/requirements.txt
    if importlib.util.find_spec("fastapi") is None:
        pytest.skip("FastAPI is not installed")
    running = {
        name: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / name), *arguments],
            cwd=BENCHMARKS,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, arguments in scripts.items()
    }
    for name, process in running.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name}:\n{output}"
        verdicts = [line for line in output.splitlines() if line.startswith(("met", "MISSED"))]
        assert verdicts, f"{name} judged no target:\n{output}"
