"""``kc dev``: a local Keycloak with a realm, for development (the demo realm by default)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TextIO

__all__ = ["ProgressBar", "run_dev"]

_DEMO_REALM = Path("examples") / "demo-realm.json"
_BAR_WIDTH = 30


class ProgressBar:
    """A download progress bar on a text stream: redrawn in place on a terminal, a line
    per tenth otherwise (logs, CI)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._live = self.stream.isatty()
        self._shown_tenth = -1
        self._started = time.monotonic()

    def __call__(self, done: int, total: int | None) -> None:
        """Show ``done`` of ``total`` bytes (``total`` may be unknown)."""
        megabytes = done / 1e6
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * _BAR_WIDTH)
            text = (
                f"{self.label} [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] "
                f"{fraction:4.0%} {megabytes:6.1f}/{total / 1e6:.1f} MB"
            )
            tenth = int(fraction * 10)
        else:
            text, tenth = f"{self.label} {megabytes:6.1f} MB", int(megabytes // 10)
        finished = total is not None and done >= total
        if self._live:
            self.stream.write(f"\r{text}" + ("\n" if finished else ""))
        elif tenth != self._shown_tenth or finished:
            self.stream.write(text + "\n")
        self._shown_tenth = tenth
        self.stream.flush()


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def run_dev(args: argparse.Namespace) -> int:
    """Start Keycloak, print where it is and how to log in, run until Ctrl-C or SIGTERM."""
    from ..testing.server import (
        DEFAULT_REALM_FILE,
        KeycloakServer,
        KeycloakStartError,
        describe_server,
        keycloak_version,
    )

    if args.cache_dir:
        os.environ["KC_CACHE_DIR"] = args.cache_dir
    realm = Path(args.realm) if args.realm else None
    if realm is None:
        realm = _DEMO_REALM if _DEMO_REALM.is_file() else DEFAULT_REALM_FILE
    if not realm.is_file():
        print(f"kc dev: no realm file {realm}", file=sys.stderr)
        return 2
    version = args.keycloak_version or keycloak_version()
    port = args.port or (8080 if _free(8080) else None)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    server = KeycloakServer(
        realm_file=realm,
        version=version,
        port=port,
        external_url="",  # always a server of our own, whatever KEYCLOAK_URL says
        download_progress=ProgressBar(f"Keycloak {version}"),
    )
    print(f"kc dev: starting Keycloak {version} with realm {realm} ...", flush=True)
    try:
        server.start()
        print(describe_server(server), flush=True)
        seconds = server.startup_seconds or 0.0
        print(f"kc dev: Keycloak ready at {server.base_url} ({seconds:.0f} s). Ctrl-C stops it.")
        sys.stdout.flush()
        code = server.wait()
        print(f"kc dev: Keycloak exited with code {code}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        return 0
    except KeycloakStartError as exc:
        print(f"kc dev: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
