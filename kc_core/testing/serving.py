"""Serve a WSGI or ASGI app on a free local port in a thread, over http or https.

:func:`serve_wsgi` uses the standard library's server (a thread per request);
:func:`serve_asgi` uses uvicorn (``pip install uvicorn``; imported on first use). Both yield
the app's base URL. Inside :func:`https_serving` they serve https with a throwaway
self-signed certificate for ``127.0.0.1`` (the conformance kit checks ``Secure`` cookies that
way); :attr:`TestTLS.ca_file` is what a client verifies it with.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import ipaddress
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ["TestTLS", "https_serving", "serve_asgi", "serve_wsgi"]

_TIMEOUT = 15.0
_TLS: contextvars.ContextVar[TestTLS | None] = contextvars.ContextVar("kc_test_tls", default=None)


@dataclass(frozen=True, slots=True)
class TestTLS:
    """A self-signed certificate for ``127.0.0.1`` and its key, as PEM files."""

    __test__ = False  # not a test class, whatever pytest's name patterns say

    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        """The file a client verifies the server with (the certificate signs itself)."""
        return self.cert_file

    @classmethod
    def create(cls, directory: Path) -> TestTLS:
        """Write a fresh key and a one-day certificate for ``127.0.0.1`` into ``directory``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = directory / "cert.pem", directory / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cls(cert_file, key_file)


@contextlib.contextmanager
def https_serving() -> Iterator[TestTLS]:
    """Within this block, :func:`serve_wsgi` and :func:`serve_asgi` serve https."""
    with tempfile.TemporaryDirectory(prefix="kc-test-tls-") as directory:
        tls = TestTLS.create(Path(directory))
        token = _TLS.set(tls)
        try:
            yield tls
        finally:
            _TLS.reset(token)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # Handshake in the request's thread, not here: a slow client must not stall accept.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        if isinstance(self.connection, ssl.SSLSocket):
            environ["HTTPS"] = "on"  # wsgiref derives wsgi.url_scheme from it
        return environ

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()


def _tls_context(tls: TestTLS) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


@contextlib.contextmanager
def serve_wsgi(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app on a free port in a thread (one thread per request); yield its URL."""
    server = make_server(
        host, 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    tls = _TLS.get()
    if tls is not None:
        server.tls = _tls_context(tls)
    thread = threading.Thread(target=server.serve_forever, name="kc-test-wsgi", daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(_TIMEOUT)


@contextlib.contextmanager
def serve_asgi(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app with uvicorn (one event loop) in a thread on a free port; yield its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    tls = _TLS.get()
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ssl_certfile=None if tls is None else tls.cert_file,
        ssl_keyfile=None if tls is None else tls.key_file,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="kc-test-uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(_TIMEOUT)
        sock.close()
