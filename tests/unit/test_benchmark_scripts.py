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


def test_every_timed_request_gets_header_values_of_its_own() -> None:
    # A server decodes each request's headers anew: a string reused by every call would
    # keep its hash and hide the cost of hashing a 2 KB token.
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _support
    finally:
        sys.path.remove(str(BENCHMARKS))
    environ = _support.wsgi_environ("/api", "a.b.c")
    received = _support.received_environ(environ)
    assert received == environ
    assert received["HTTP_AUTHORIZATION"] is not environ["HTTP_AUTHORIZATION"]
    assert received["wsgi.url_scheme"] is environ["wsgi.url_scheme"]
    scope = _support.asgi_scope("/api", "a.b.c")
    copy = _support.received_scope(scope)
    assert copy == scope
    assert copy is not scope
    assert all(
        new is not old for (_, new), (_, old) in zip(copy["headers"], scope["headers"], strict=True)
    )
