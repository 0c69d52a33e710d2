"""Several worker processes and a failing Keycloak or Redis: the figures of issue 12.

Run: ``python benchmarks/bench_faults.py [--long]`` from the repository root, in the
environment the test suite uses (kc-core, kc-flask, gunicorn, redis-server, the cached
Keycloak). It runs ``tests/integration/test_faults.py``, where every figure is measured on
real processes: the Flask example under ``gunicorn -w 3`` with the Redis token store, the
suite's own Keycloak (frozen with SIGSTOP where a test says so) and a real ``redis-server``
(paused the same way); then prints the lines those tests report. ``--long`` adds the 20 s
Keycloak freeze under load (``KC_LONG=1``). Latencies are read as ratios to the unfrozen
run of the same test; absolute milliseconds depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The first words of each line the tests print with their figures.
FIGURES = (
    "20 concurrent requests",
    "Keycloak frozen",
    "key disabled",
    "forged kid",
    "Redis paused",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also the 20 s freeze under load")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "KEYCLOAK_URL"}  # freezing needs our own
    if args.long:
        env["KC_LONG"] = "1"
    command = [
        sys.executable, "-m", "pytest", "tests/integration/test_faults.py",
        "-q", "-s", "-p", "no:cacheprovider",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [
        line for line in run.stdout.splitlines() if line.startswith((*FIGURES, "FAILED", "E   "))
    ]
    for line in lines:
        print(line)
    print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:])
    return run.returncode


if __name__ == "__main__":
    raise SystemExit(main())
