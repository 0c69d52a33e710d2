"""What the multi-process tests share: app processes on free ports and throwaway clients."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from kc_core.testing.admin import KeycloakAdmin

APP_SCRIPT = Path(__file__).with_name("kc_app.py")
BOTTLE_APP_SCRIPT = Path(__file__).with_name("bottle_app.py")
_START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` every 10 ms; return the seconds it took, fail at the deadline."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


class AppProcess:
    """One ``kc_app.py`` process; :meth:`restart` brings it back on the same port."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        port: int | None = None,
        log_dir: Path,
        script: Path = APP_SCRIPT,
    ) -> None:
        self.script = script
        self.port = port or free_port()
        self.args = list(args)
        self.log_path = log_dir / f"app-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(self.script), "--port", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_for(self._healthy, _START_TIMEOUT, f"app on port {self.port} ({self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"app process on port {self.port} exited:\n{log}")
        try:
            return requests.get(f"{self.url}/health", timeout=0.5).ok
        except requests.ConnectionError:
            return False

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def temporary_client(
    admin: KeycloakAdmin, realm: str, template: str, **attributes: str
) -> Iterator[dict[str, Any]]:
    """A copy of client ``template`` under a fresh clientId, deleted afterwards.

    Tests that set realm-wide things (a back-channel logout URL) on their own copy never
    disturb tests running at the same time against the shared ``template`` client.
    """
    representation = admin.client(realm, template)
    client_id = f"{template}-{secrets.token_hex(4)}"
    for key in ("id", "authorizationSettings"):
        representation.pop(key, None)
    for mapper in representation.get("protocolMappers", []):
        mapper.pop("id", None)
        config = mapper.get("config", {})
        if config.get("included.client.audience") == template:
            # The copy's tokens must name the copy as audience, as the template's name it.
            del config["included.client.audience"]
            config["included.custom.audience"] = client_id
    representation["clientId"] = client_id
    representation["name"] = client_id
    representation.setdefault("attributes", {}).update(attributes)
    path = f"{admin.realm_path(realm)}/clients"
    created = admin.post(path, json=representation)
    client_uuid = created.headers["Location"].rsplit("/", 1)[-1]
    try:
        yield admin.get(f"{path}/{client_uuid}")
    finally:
        admin.delete(f"{path}/{client_uuid}")
