"""The distribution download of ``kc dev`` (kc_core.testing.server.download) and its text
progress bar, against a loopback HTTP server streaming real bytes."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kc_core.cli.dev import ProgressBar
from kc_core.testing.server import KeycloakStartError, download

PAYLOAD = bytes(range(256)) * 16384  # 4 MiB: 16 chunks of the download


class _Handler(http.server.BaseHTTPRequestHandler):
    checksum = hashlib.sha1(PAYLOAD).hexdigest()

    def do_GET(self) -> None:
        if self.path.endswith(".sha1"):
            body = f"{self.checksum}  archive.zip\n".encode()
        elif self.path.endswith(".zip"):
            body = PAYLOAD
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), 64 * 1024):
            self.wfile.write(body[start : start + 64 * 1024])

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def repository() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    _Handler.checksum = hashlib.sha1(PAYLOAD).hexdigest()


def test_the_download_draws_a_progress_bar_to_the_end(repository: str, tmp_path: Path) -> None:
    stream = io.StringIO()
    target = tmp_path / "archive.zip"
    download(f"{repository}/archive.zip", target, progress=ProgressBar("Keycloak 1.0", stream))
    assert target.read_bytes() == PAYLOAD
    lines = stream.getvalue().splitlines()
    # Not a terminal: one line per tenth, from 0 % to 100 %.
    assert lines[0].startswith("Keycloak 1.0 [------------------------------]   0%")
    assert lines[-1] == "Keycloak 1.0 [##############################] 100%    4.2/4.2 MB"
    assert len(lines) == 11
    assert not (tmp_path / "archive.zip.part").exists()


def test_a_terminal_sees_the_bar_redrawn_in_place(repository: str, tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    download(f"{repository}/archive.zip", tmp_path / "a.zip", progress=ProgressBar("kc", stream))
    drawn = stream.getvalue()
    assert drawn.count("\r") == 17  # 0 %, then each chunk
    assert drawn.endswith("100%    4.2/4.2 MB\n")


def test_a_checksum_mismatch_keeps_nothing(repository: str, tmp_path: Path) -> None:
    _Handler.checksum = "0" * 40
    target = tmp_path / "archive.zip"
    with pytest.raises(KeycloakStartError, match="checksum"):
        download(f"{repository}/archive.zip", target)
    assert list(tmp_path.iterdir()) == []
