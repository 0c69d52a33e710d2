"""``kc dev`` starts a real Keycloak with the demo realm and prints a ready URL; on a cold
cache it downloads the distribution with a progress bar first.

Both start a Keycloak of their own (30-100 s on a loaded 2-core machine), so both are long
tests (``./dev long``); the default run keeps the progress bar's tests
(tests/unit/test_cli_dev_download.py) and the refusal of a missing realm file below."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from apps.harness import free_port

from kc_core.testing.server import cache_dir, keycloak_version

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_START = 240.0


@functools.cache
def _kc() -> str:
    return str(Path(sys.executable).with_name("kc"))


def _run_until_ready(args: list[str], env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Start ``kc dev``; yield (ready URL, stderr lines so far); stop it with Ctrl-C."""
    process = subprocess.Popen(
        [_kc(), "dev", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: list[str] = []
    threading.Thread(target=lambda: [out.put(x) for x in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    threading.Thread(target=lambda: [err.append(x) for x in process.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + _START
        seen: list[str] = []
        while True:
            assert time.monotonic() < deadline, "".join(seen + err)
            try:
                line = out.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "".join(seen + err)
                continue
            seen.append(line)
            if "Keycloak ready at " in line:
                url = line.split("Keycloak ready at ", 1)[1].split()[0]
                yield url, err
                break
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_kc_dev_refuses_a_missing_realm_file_before_starting_anything(tmp_path: Path) -> None:
    run = subprocess.run(
        [_kc(), "dev", "--realm", str(tmp_path / "missing.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert f"no realm file {tmp_path / 'missing.json'}" in run.stderr


@pytest.mark.long
def test_kc_dev_starts_the_demo_realm_and_prints_a_ready_url() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KEYCLOAK_URL"}
    for url, _ in _run_until_ready(["--port", str(port)], env):
        assert url == f"http://127.0.0.1:{port}"
        discovery = requests.get(
            f"{url}/realms/kc-demo/.well-known/openid-configuration", timeout=10
        )
        assert discovery.status_code == 200
        admin = requests.post(
            f"{url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                  "password": "admin"},
            timeout=10,
        )  # fmt: skip
        assert admin.status_code == 200


@pytest.mark.long
def test_kc_dev_on_a_cold_cache_shows_download_progress_then_starts(tmp_path: Path) -> None:
    # The real distribution, served on loopback as Maven Central serves it (path and .sha1).
    version = keycloak_version()
    archive = cache_dir(version) / f"keycloak-quarkus-dist-{version}.zip"
    if not archive.exists():
        pytest.skip(f"no cached {archive.name} to serve")
    repository = tmp_path / "repository"
    folder = repository / "org" / "keycloak" / "keycloak-quarkus-dist" / version
    folder.mkdir(parents=True)
    os.link(archive, folder / archive.name)
    digest = hashlib.sha1(archive.read_bytes()).hexdigest()
    (folder / f"{archive.name}.sha1").write_text(digest)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(repository))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cold = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "KEYCLOAK_URL"}
    env["KC_MAVEN_REPOSITORY"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for url, err in _run_until_ready(
            ["--port", str(free_port()), "--cache-dir", str(cold)], env
        ):
            progress = [line for line in err if line.startswith(f"Keycloak {version} [")]
            assert progress[0].split("]")[1].split()[0] == "0%"
            assert progress[-1].split("]")[1].split()[0] == "100%"
            assert len(progress) == 11
            assert requests.get(f"{url}/realms/kc-demo", timeout=10).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    assert (cold / "dist" / "bin" / "kc.sh").exists()
