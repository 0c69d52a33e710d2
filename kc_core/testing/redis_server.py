"""Start and stop a real ``redis-server`` on a free port, for tests.

The server keeps nothing on disk (no RDB snapshots, no AOF) and runs from a temporary
directory, so runs never share state. ``KC_REDIS_SERVER`` names the executable (default:
``redis-server`` on ``PATH``, then ``/usr/bin/redis-server``); on Debian and Ubuntu it comes
from the ``redis-server`` package.

    with RedisServer.start() as server:
        store = RedisTokenStore.from_url(server.url)

Run ``python -m kc_core.testing.redis_server`` to start one by hand.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "RedisStartError", "find_redis_server"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_POLL_INTERVAL = 0.02


class RedisStartError(RuntimeError):
    """``redis-server`` is missing or did not answer in time (the message has its log)."""


def find_redis_server() -> str | None:
    """The ``redis-server`` executable to run, or ``None`` when there is none."""
    configured = os.environ.get("KC_REDIS_SERVER")
    if configured:
        return configured
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None


def _executable() -> str:
    executable = find_redis_server()
    if executable is None:
        raise RedisStartError(
            "redis-server not found: install the redis-server package or set KC_REDIS_SERVER"
        )
    return executable


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One running ``redis-server`` process; stop it with :meth:`stop` or a ``with`` block.

    :meth:`stop` followed by :meth:`restart` brings it back on the same port (empty: it
    keeps nothing), which is how tests simulate a Redis outage.
    """

    def __init__(self, executable: str, port: int, workdir: Path, args: Sequence[str] = ()) -> None:
        self.executable = executable
        self.port = port
        self.workdir = workdir
        self.args = tuple(args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.workdir / "redis.log"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @classmethod
    def start(cls, *, port: int | None = None, args: Sequence[str] = ()) -> RedisServer:
        """Start a server on ``port`` (default: a free one) and wait until it answers PING.

        ``args`` are more ``redis-server`` options, e.g. ``("--replicaof", "127.0.0.1",
        "6379")`` for a replica.
        """
        executable = _executable()
        workdir = Path(tempfile.mkdtemp(prefix="kc-redis-"))
        server = cls(executable, port or _free_port(), workdir, args)
        server.restart()
        return server

    @classmethod
    def start_sentinel(
        cls, primary_port: int, *, service: str = "kc", down_after: float = 1.0
    ) -> RedisServer:
        """Start a Redis Sentinel (quorum 1) watching the primary on ``primary_port`` as
        ``service``; it fails over ``down_after`` seconds after the primary stops answering."""
        executable = _executable()
        workdir = Path(tempfile.mkdtemp(prefix="kc-sentinel-"))
        port = _free_port()
        config = workdir / "sentinel.conf"  # Sentinel rewrites it: it must be writable
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {service} {int(down_after * 1000)}\n"
            f"sentinel failover-timeout {service} 5000\n"
        )
        server = cls(executable, port, workdir, (str(config), "--sentinel"))
        server.restart()
        return server

    def restart(self) -> None:
        """Start the process (again) on the same port; no-op while it is running."""
        if self.running:
            return
        log = self.log_path.open("ab")
        if "--sentinel" in self.args:
            command = [self.executable, *self.args]
        else:
            command = [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--daemonize", "no",
                *self.args,
            ]  # fmt: skip
        try:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while not _ping(self.port):
            if not self.running or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RedisStartError(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(_POLL_INTERVAL)

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._process.pid if self.running and self._process is not None else None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): clients connect but get no answer, like a hung Redis."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); the working directory is kept."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)

    def close(self) -> None:
        """Stop the process and remove its working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":
    with RedisServer.start() as running:
        print(f"redis-server ready at {running.url} (Ctrl-C stops it)", flush=True)
        try:
            while running.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
