"""Start, reuse and stop a real Keycloak server for tests.

The distribution is fetched once with Maven into a cache outside the repository and unpacked
there. Every start works on a fresh copy of that tree with an in-memory database, so runs never
share state and concurrent runs on one machine never collide.

Environment variables:

- ``KC_KEYCLOAK_VERSION``: Keycloak version (default :data:`DEFAULT_KEYCLOAK_VERSION`).
- ``KC_CACHE_DIR``: cache directory (default ``~/.cache/kc-keycloak/<version>``).
- ``KC_MAVEN_REPOSITORY``: where the distribution is downloaded from (default Maven
  Central, :data:`MAVEN_CENTRAL`); when that fails, ``mvn`` fetches it.
- ``KC_START_TIMEOUT``: seconds to wait for the server to become ready (default 180).
- ``KC_LOG_DIR``: where server logs go (default ``.kc-logs`` under the working directory).
- ``KC_KEYCLOAK_JAVA_OPTS``: extra JVM options (default: C1 only, which starts faster).
- ``KEYCLOAK_URL``: use this running server instead of starting one; the realm is imported
  through the admin REST API when it is missing (admin credentials from
  ``KC_ADMIN_USERNAME`` / ``KC_ADMIN_PASSWORD``, default ``admin`` / ``admin``).

Run ``python -m kc_core.testing.server`` to start a server by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

__all__ = [
    "DEFAULT_KEYCLOAK_VERSION",
    "DEFAULT_REALM_FILE",
    "KC_JWT_KEY_ID",
    "MAVEN_CENTRAL",
    "DownloadProgress",
    "KeycloakRealm",
    "KeycloakServer",
    "KeycloakStartError",
    "RealmClient",
    "RealmUser",
    "describe_server",
    "download",
]

DEFAULT_KEYCLOAK_VERSION = "26.7.3"
DEFAULT_REALM_FILE = Path(__file__).with_name("realm.json")
# The kid of the private_key_jwt client kc-jwt's public key (inline in realm.json); its
# private half is a test asset of kc's own repository (tests/keys/), not shipped.
KC_JWT_KEY_ID = "kc-jwt-test-key"
DEFAULT_START_TIMEOUT = 180.0
DEFAULT_JAVA_OPTS = "-XX:TieredStopAtLevel=1"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
_DOWNLOAD_CHUNK = 256 * 1024

DownloadProgress = Callable[[int, "int | None"], None]
"""Told ``(bytes so far, total bytes or None)`` while the distribution downloads."""

# Build-time options: Keycloak re-runs its ~20 s Quarkus build whenever these change, so they
# are fixed here and the built tree is kept in the cache keyed by them.
_BUILD_OPTIONS = ("--db=dev-mem", "--health-enabled=true")
_POLL_INTERVAL = 0.25
_HTTP_TIMEOUT = 5.0
_STOP_TIMEOUT = 30.0
_START_ATTEMPTS = 3


class KeycloakStartError(RuntimeError):
    """The Keycloak server could not be fetched, started or reached.

    The message ends with the tail of the server log when there is one.
    """


@dataclass(frozen=True, slots=True)
class RealmClient:
    """A client of the test realm and what a test needs to authenticate as it."""

    client_id: str
    secret: str | None
    public: bool
    description: str = ""
    authenticator: str = "client-secret"
    """Keycloak's ``clientAuthenticatorType``: ``client-secret``, ``client-jwt``, or ``none``."""


@dataclass(frozen=True, slots=True)
class RealmUser:
    """A user of the test realm with the password set in the realm file."""

    username: str
    password: str
    email: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class KeycloakRealm:
    """Endpoints and credentials of one realm on a running server.

    This is what tests use: ``keycloak.token_url``, ``keycloak.client("kc-web").secret``,
    ``keycloak.user("alice").password``.
    """

    base_url: str
    realm: str
    admin_username: str
    admin_password: str
    clients: Mapping[str, RealmClient] = field(default_factory=dict)
    users: Mapping[str, RealmUser] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def issuer(self) -> str:
        """The realm's issuer, ``<base_url>/realms/<realm>``."""
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def discovery_url(self) -> str:
        """The OpenID Connect discovery document of the realm."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def uma_discovery_url(self) -> str:
        """The UMA 2.0 discovery document of the realm."""
        return f"{self.issuer}/.well-known/uma2-configuration"

    @property
    def auth_url(self) -> str:
        """The authorization endpoint."""
        return f"{self.issuer}/protocol/openid-connect/auth"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self) -> str:
        """The realm's signing keys (JWKS)."""
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def userinfo_url(self) -> str:
        """The userinfo endpoint."""
        return f"{self.issuer}/protocol/openid-connect/userinfo"

    @property
    def introspection_url(self) -> str:
        """The token introspection endpoint."""
        return f"{self.issuer}/protocol/openid-connect/token/introspect"

    @property
    def revocation_url(self) -> str:
        """The token revocation endpoint."""
        return f"{self.issuer}/protocol/openid-connect/revoke"

    @property
    def logout_url(self) -> str:
        """The RP-initiated logout endpoint (``end_session_endpoint``)."""
        return f"{self.issuer}/protocol/openid-connect/logout"

    @property
    def device_authorization_url(self) -> str:
        """The device authorization endpoint."""
        return f"{self.issuer}/protocol/openid-connect/auth/device"

    @property
    def resource_set_url(self) -> str:
        """The UMA protection API for resources (needs a PAT)."""
        return f"{self.issuer}/authz/protection/resource_set"

    def client(self, client_id: str) -> RealmClient:
        """Return the client ``client_id``; raise ``KeyError`` naming known clients if absent."""
        try:
            return self.clients[client_id]
        except KeyError:
            known = sorted(self.clients)
            raise KeyError(f"no client {client_id!r} in realm; known: {known}") from None

    def user(self, username: str) -> RealmUser:
        """Return the user ``username``; raise ``KeyError`` naming known users if absent."""
        try:
            return self.users[username]
        except KeyError:
            known = sorted(self.users)
            raise KeyError(f"no user {username!r} in realm; known: {known}") from None


def keycloak_version() -> str:
    """The Keycloak version to run: ``KC_KEYCLOAK_VERSION`` or the default."""
    return os.environ.get("KC_KEYCLOAK_VERSION") or DEFAULT_KEYCLOAK_VERSION


def cache_dir(version: str) -> Path:
    """Where the distribution of ``version`` is cached (``KC_CACHE_DIR`` overrides)."""
    configured = os.environ.get("KC_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "kc-keycloak" / version


def load_realm(
    realm_file: Path,
    base_url: str,
    admin_username: str,
    admin_password: str,
    log_path: Path | None = None,
) -> KeycloakRealm:
    """Describe the realm in ``realm_file`` as served from ``base_url``."""
    representation = _read_json(realm_file)
    clients: dict[str, RealmClient] = {}
    for client in representation.get("clients", []):
        clients[client["clientId"]] = RealmClient(
            client_id=client["clientId"],
            secret=client.get("secret"),
            public=bool(client.get("publicClient", False)),
            description=client.get("description", ""),
            authenticator="none"
            if client.get("publicClient")
            else client.get("clientAuthenticatorType", "client-secret"),
        )
    users: dict[str, RealmUser] = {}
    for user in representation.get("users", []):
        passwords = [c["value"] for c in user.get("credentials", []) if c.get("type") == "password"]
        if not passwords:
            continue  # service accounts have no password and cannot log in
        users[user["username"]] = RealmUser(
            username=user["username"],
            password=passwords[0],
            email=user.get("email", ""),
            enabled=bool(user.get("enabled", True)),
        )
    return KeycloakRealm(
        base_url=base_url,
        realm=representation["realm"],
        admin_username=admin_username,
        admin_password=admin_password,
        clients=clients,
        users=users,
        log_path=log_path,
    )


class KeycloakServer:
    """A real Keycloak server with the test realm imported.

    Starts ``kc.sh start-dev`` on free loopback ports from a fresh copy of the cached
    distribution, or attaches to ``KEYCLOAK_URL`` when that is set. Use it as a context manager::

        with KeycloakServer() as server:
            print(server.issuer)

    Raises :class:`KeycloakStartError` (with the log tail) when the server does not come up.
    """

    def __init__(
        self,
        *,
        realm_file: Path | str | None = None,
        version: str | None = None,
        port: int | None = None,
        management_port: int | None = None,
        log_dir: Path | str | None = None,
        start_timeout: float | None = None,
        external_url: str | None = None,
        admin_username: str | None = None,
        admin_password: str | None = None,
        download_progress: DownloadProgress | None = None,
    ) -> None:
        self.realm_file = Path(realm_file) if realm_file else DEFAULT_REALM_FILE
        self._download_progress = download_progress
        self.version = version or keycloak_version()
        self.realm: str = _read_json(self.realm_file)["realm"]
        self._requested_port = port
        self._requested_management_port = management_port
        self._log_dir = Path(log_dir or os.environ.get("KC_LOG_DIR") or Path.cwd() / ".kc-logs")
        self.start_timeout = start_timeout or float(
            os.environ.get("KC_START_TIMEOUT") or DEFAULT_START_TIMEOUT
        )
        external = external_url if external_url is not None else os.environ.get("KEYCLOAK_URL")
        self.external_url = external.rstrip("/") if external else None
        self.admin_username = admin_username or os.environ.get("KC_ADMIN_USERNAME") or "admin"
        self.admin_password = admin_password or os.environ.get("KC_ADMIN_PASSWORD") or "admin"
        self.port: int | None = None
        self.management_port: int | None = None
        self.log_path: Path | None = None
        self.home: Path | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the server, e.g. ``http://127.0.0.1:41234``."""
        if self.external_url:
            return self.external_url
        if self.port is None:
            raise RuntimeError("Keycloak server is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """Issuer of the test realm."""
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def is_external(self) -> bool:
        """True when attached to ``KEYCLOAK_URL`` rather than running our own process."""
        return self.external_url is not None

    def realm_info(self) -> KeycloakRealm:
        """Endpoints and credentials of the test realm on this server."""
        return load_realm(
            self.realm_file,
            self.base_url,
            self.admin_username,
            self.admin_password,
            self.log_path,
        )

    def start(self) -> KeycloakServer:
        """Start (or attach to) the server and wait until the realm answers; return ``self``."""
        started = time.monotonic()
        if self.external_url:
            self._attach()
        else:
            self._launch()
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after a deadline) and delete its working copy."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGCONT)  # a paused server cannot handle SIGTERM
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=_STOP_TIMEOUT)
        if process is not None:
            # kc.sh may have exited before its java child: reap the whole group.
            _signal_group(process, signal.SIGKILL)
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP to kc.sh and its JVM): connections are accepted by the
        kernel but never answered, like a hung Keycloak. Always :meth:`resume` afterwards."""
        if self._process is None:
            raise RuntimeError("Keycloak server was not started by this object")
        _signal_group(self._process, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        if self._process is not None:
            _signal_group(self._process, signal.SIGCONT)

    def wait(self) -> int:
        """Block until the server process exits and return its exit code."""
        if self._process is None:
            raise RuntimeError("Keycloak server was not started by this object")
        return self._process.wait()

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of the server log, or ``""`` if there is none."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 200 * lines))
            text = log.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> KeycloakServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _attach(self) -> None:
        from kc_core.testing.admin import KeycloakAdmin

        session = requests.Session()
        try:
            session.get(f"{self.base_url}/realms/master", timeout=_HTTP_TIMEOUT).raise_for_status()
        except requests.RequestException as exc:
            raise KeycloakStartError(
                f"KEYCLOAK_URL={self.base_url} is not reachable: {exc}"
            ) from exc
        discovery = session.get(
            f"{self.issuer}/.well-known/openid-configuration", timeout=_HTTP_TIMEOUT
        )
        if discovery.status_code == 404:
            admin = KeycloakAdmin(self.base_url, self.admin_username, self.admin_password)
            admin.post("/admin/realms", json=_read_json(self.realm_file))
            discovery = session.get(
                f"{self.issuer}/.well-known/openid-configuration", timeout=_HTTP_TIMEOUT
            )
        if not discovery.ok:
            raise KeycloakStartError(
                f"realm {self.realm!r} on {self.base_url} answers HTTP {discovery.status_code}"
            )

    def _launch(self) -> None:
        distribution = _ensure_distribution(
            self.version, cache_dir(self.version), self._download_progress
        )
        fixed_ports = (
            self._requested_port is not None or self._requested_management_port is not None
        )
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._launch_once(distribution)
                return
            except KeycloakStartError as exc:
                # Another process may take a free port before Keycloak binds it: pick new ones.
                if fixed_ports or attempt == _START_ATTEMPTS or "already in use" not in str(exc):
                    raise

    def _launch_once(self, distribution: Path) -> None:
        self.port = self._requested_port or _free_port()
        self.management_port = self._requested_management_port or _free_port(exclude=self.port)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self._log_dir / f"keycloak-{self.port}.log"
        self.home = Path(tempfile.mkdtemp(prefix=f"kc-keycloak-{self.port}-"))
        built = _copy_distribution(distribution, self.home)
        import_dir = self.home / "data" / "import"
        import_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.realm_file, import_dir / "realm.json")

        command = [
            str(self.home / "bin" / "kc.sh"),
            "start-dev",
            *_BUILD_OPTIONS,
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            "--hostname-strict=false",
            "--import-realm",
        ]
        with self.log_path.open("wb") as log:
            log.write(("$ " + " ".join(command) + "\n").encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=self.home,
                env=self._server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: stop() signals kc.sh and java
            )
        self._wait_until_ready()
        if not built:
            _keep_build(distribution, self.home)

    def _server_environment(self) -> dict[str, str]:
        # KC_* variables configure Keycloak itself: pass none of the caller's through.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KC_")}
        env["KC_BOOTSTRAP_ADMIN_USERNAME"] = self.admin_username
        env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = self.admin_password
        env["JAVA_OPTS_APPEND"] = os.environ.get("KC_KEYCLOAK_JAVA_OPTS", DEFAULT_JAVA_OPTS)
        return env

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        ready_url = f"http://127.0.0.1:{self.management_port}/health/ready"
        realm_url = f"{self.issuer}/.well-known/openid-configuration"
        with requests.Session() as session:
            while True:
                code = self._process.poll()
                if code is not None:
                    self._fail(f"Keycloak exited with code {code} before it was ready")
                if _answers(session, ready_url) and _answers(session, realm_url):
                    return
                if time.monotonic() > deadline:
                    self._fail(f"Keycloak was not ready within {self.start_timeout:.0f} s")
                time.sleep(_POLL_INTERVAL)

    def _fail(self, reason: str) -> None:
        tail = self.log_tail()
        log_path = self.log_path
        self.stop()
        raise KeycloakStartError(f"{reason}; log: {log_path}\n--- log tail ---\n{tail}")


def _answers(session: requests.Session, url: str) -> bool:
    try:
        return session.get(url, timeout=_HTTP_TIMEOUT).status_code == 200
    except requests.RequestException:
        return False


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _free_port(exclude: int | None = None) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port != exclude:
            return port


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``cache`` so concurrent test runs fetch and unpack once."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_marker(distribution: Path) -> Path:
    return distribution / ".kc-build" / ("_".join(o.strip("-") for o in _BUILD_OPTIONS))


def _ensure_distribution(
    version: str, cache: Path, progress: DownloadProgress | None = None
) -> Path:
    """Fetch (Maven Central, else mvn) and unpack Keycloak ``version`` into ``cache`` once;
    return its home."""
    distribution = cache / "dist"
    with _locked(cache):
        if (distribution / "bin" / "kc.sh").exists():
            return distribution
        archive = cache / f"keycloak-quarkus-dist-{version}.zip"
        if not archive.exists():
            repository = os.environ.get("KC_MAVEN_REPOSITORY") or MAVEN_CENTRAL
            url = (
                f"{repository.rstrip('/')}/org/keycloak/keycloak-quarkus-dist/{version}/"
                f"{archive.name}"
            )
            try:
                download(url, archive, progress=progress)
            except (requests.RequestException, OSError, KeycloakStartError):
                _fetch_with_maven(version, cache)
        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=cache))
        try:
            _unzip(archive, staging)
            (top,) = list(staging.iterdir())
            top.rename(distribution)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return distribution


def download(url: str, target: Path, *, progress: DownloadProgress | None = None) -> None:
    """Stream ``url`` into ``target``, checked against the repository's ``.sha1`` when it
    publishes one; ``progress`` hears of every chunk. ``target`` appears only when complete.

    Raises:
        requests.RequestException: the download failed.
        KeycloakStartError: the checksum does not match.
    """
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha1()  # noqa: S324 - Maven Central's published checksum, not security
    try:
        with requests.get(url, stream=True, timeout=(_HTTP_TIMEOUT, 60)) as response:
            response.raise_for_status()
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress is not None:
                progress(0, total)
            with partial.open("wb") as sink:
                for chunk in response.iter_content(_DOWNLOAD_CHUNK):
                    sink.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        published = requests.get(url + ".sha1", timeout=_HTTP_TIMEOUT)
        expected = published.text.split()[0].lower() if published.ok and published.text else ""
    except requests.RequestException:
        expected = ""
    if expected and expected != digest.hexdigest():
        partial.unlink(missing_ok=True)
        raise KeycloakStartError(f"{url}: checksum {digest.hexdigest()} is not {expected}")
    partial.rename(target)


def _fetch_with_maven(version: str, cache: Path) -> None:
    if shutil.which("mvn") is None:
        raise KeycloakStartError(
            "Maven (mvn) is needed to fetch Keycloak; run scripts/install-system-deps.sh"
        )
    artifact = f"org.keycloak:keycloak-quarkus-dist:{version}:zip"
    staging = Path(tempfile.mkdtemp(prefix="fetch-", dir=cache))
    try:
        result = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "dependency:copy",
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={staging}",
            ],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise KeycloakStartError(
                f"mvn could not fetch {artifact} (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        # Renamed only when complete, so an interrupted fetch never leaves a broken archive.
        name = f"keycloak-quarkus-dist-{version}.zip"
        (staging / name).rename(cache / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unzip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            path = Path(bundle.extract(member, target))
            mode = member.external_attr >> 16
            if mode and not member.is_dir():
                path.chmod(mode & 0o777)  # zipfile drops the executable bits of bin/kc.sh


def _copy_distribution(distribution: Path, home: Path) -> bool:
    """Copy the cached tree to ``home``; return whether it holds our build already.

    Libraries and themes are hard-linked (Keycloak never writes them); ``lib/quarkus`` is
    copied because Keycloak rewrites it when it rebuilds.
    """
    with _locked(distribution.parent):
        built = _build_marker(distribution).exists()
        shutil.copytree(
            distribution,
            home,
            symlinks=True,
            dirs_exist_ok=True,
            copy_function=_link_or_copy,
            ignore=shutil.ignore_patterns(".kc-build", "data"),
        )
        shutil.rmtree(home / "lib" / "quarkus")
        shutil.copytree(distribution / "lib" / "quarkus", home / "lib" / "quarkus")
    return built


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system or no hard links: copy instead
        shutil.copy2(source, target)


def _keep_build(distribution: Path, home: Path) -> None:
    """Store the Quarkus build that the first start produced so later starts skip it."""
    with _locked(distribution.parent):
        marker = _build_marker(distribution)
        if marker.exists():
            return
        fresh = distribution / "lib" / "quarkus.new"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(home / "lib" / "quarkus", fresh)
        old = distribution / "lib" / "quarkus.old"
        shutil.rmtree(old, ignore_errors=True)
        (distribution / "lib" / "quarkus").rename(old)
        fresh.rename(distribution / "lib" / "quarkus")
        shutil.rmtree(old, ignore_errors=True)
        marker.parent.mkdir(exist_ok=True)
        marker.touch()


def describe_server(server: KeycloakServer) -> str:
    """What a person needs to use a started server: URLs, admin login, users, clients."""
    realm = server.realm_info()
    lines = [
        f"Keycloak {server.version} at {realm.base_url}",
        f"  admin console: {realm.base_url}/admin/  ({realm.admin_username} / "
        f"{realm.admin_password})",
        f"  realm:         {realm.realm}  issuer {realm.issuer}",
        "  users:",
    ]
    for user in realm.users.values():
        state = "" if user.enabled else "  (disabled)"
        lines.append(f"    {user.username:<8} {user.password}{state}")
    lines.append("  clients:")
    for client in realm.clients.values():
        if client.public:
            credential = "public"
        elif client.authenticator == "client-jwt":
            credential = f"private_key_jwt, kid {KC_JWT_KEY_ID}"
        else:
            credential = client.secret or "(no secret)"
        lines.append(f"    {client.client_id:<12} {credential}")
    if server.log_path is not None:
        lines.append(f"  log:           {server.log_path}")
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Start a server with the test realm, print how to use it, run until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m kc_core.testing.server",
        description="Run a throwaway Keycloak with the kc test realm.",
    )
    parser.add_argument("--realm", type=Path, default=None, help="realm JSON file to import")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    args = parser.parse_args(argv)
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    server = KeycloakServer(realm_file=args.realm, port=args.port)
    try:
        server.start()
        print(describe_server(server), flush=True)
        print(f"Started in {server.startup_seconds:.1f} s. Press Ctrl-C to stop.", flush=True)
        if server.is_external:
            signal.pause()
            return 0
        code = server.wait()
        print(f"Keycloak exited with code {code}", flush=True)
        return code or 1
    except KeyboardInterrupt:
        return 0
    except KeycloakStartError as exc:
        print(exc, flush=True)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
