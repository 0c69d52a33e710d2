"""``Config.internal_url``: server-to-server calls on one address, browsers and the issuer on
another, with the real Keycloak reached on two loopback addresses.

Keycloak listens on 127.0.0.1. Two TCP forwarders stand for the two networks of a container
deployment: the *public* one (127.0.0.1, what browsers reach) and the *internal* one
(127.0.0.2, what the app reaches). Each records the HTTP request lines it carried. A realm of
this test's own has its *Frontend URL* set to the public address, as a production Keycloak has
its hostname set, so it announces the public issuer to internal callers too.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from toy_adapter import ToyAdapter, ToyRequest, ToyResponse

from kc_core import Config
from kc_core.engine import Engine, EngineSettings
from kc_core.plugins import Plugins
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

APP = "http://127.0.0.1:9"
CALLBACK = f"{APP}/kc/callback"
SECRET = "split-network-secret-of-enough-length"
# Unanchored: on a kept-alive connection a request follows the previous form body directly.
_REQUEST_LINE = re.compile(rb"(?:GET|POST|PUT|DELETE|HEAD|OPTIONS) (/\S*) HTTP/1\.[01]\r\n")


@dataclass
class Forwarder:
    """A loopback TCP forwarder that keeps what clients sent, to tell which paths it carried."""

    host: str
    target: tuple[str, int]
    connections: int = 0
    _streams: list[bytearray] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None

    @property
    def url(self) -> str:
        assert self._listener is not None
        return f"http://{self.host}:{self._listener.getsockname()[1]}"

    def paths(self) -> list[str]:
        """The request paths (without query) of every HTTP request carried so far."""
        with self._lock:
            streams = [bytes(s) for s in self._streams]
        return [
            m.group(1).decode().split("?", 1)[0] for s in streams for m in _REQUEST_LINE.finditer(s)
        ]

    def start(self) -> None:
        self._listener = socket.create_server((self.host, 0))
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            stream = bytearray()
            with self._lock:
                self.connections += 1
                self._streams.append(stream)
            threading.Thread(target=_pump, args=(client, upstream, stream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, None), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
    try:
        while chunk := source.recv(65536):
            if record is not None:
                record.extend(chunk)
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class SplitNetwork:
    public: Forwarder
    internal: Forwarder
    realm: str


@pytest.fixture(scope="module")
def split_network(keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin) -> Iterator[SplitNetwork]:
    host, port = keycloak.base_url.removeprefix("http://").split(":")
    public, internal = (
        Forwarder("127.0.0.1", (host, int(port))),
        Forwarder("127.0.0.2", (host, int(port))),
    )
    public.start()
    internal.start()
    realm = f"kc-split-{uuid.uuid4().hex[:8]}"
    keycloak_admin.post(
        "/admin/realms",
        json={
            "realm": realm,
            "enabled": True,
            "attributes": {"frontendUrl": public.url},
            "clients": [
                {
                    "clientId": "web",
                    "secret": SECRET,
                    "redirectUris": ["http://127.0.0.1/*"],
                    "directAccessGrantsEnabled": True,
                }
            ],
            "users": [
                {
                    "username": "alice",
                    "enabled": True,
                    "email": "alice@example.com",
                    "firstName": "Alice",
                    "lastName": "Anderson",
                    "emailVerified": True,
                    "credentials": [{"type": "password", "value": "alice-password"}],
                }
            ],
        },
    )
    try:
        yield SplitNetwork(public, internal, realm)
    finally:
        keycloak_admin.delete(keycloak_admin.realm_path(realm))
        public.stop()
        internal.stop()


def _engine(config: Config) -> Engine:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    settings = EngineSettings(logout_mode="server")
    return Engine(config, plugins=plugins, settings=settings)


def test_backchannel_calls_go_to_the_internal_url_and_browsers_to_the_public_one(
    split_network: SplitNetwork, keycloak_admin: KeycloakAdmin, caplog: pytest.LogCaptureFixture
) -> None:
    public, internal = split_network.public, split_network.internal
    config = Config(
        server_url=public.url,
        internal_url=internal.url,
        realm=split_network.realm,
        client_id="web",
        client_secret=SECRET,
        retries=0,
    )
    engine = _engine(config)
    client = engine.client
    issuer = f"{public.url}/realms/{split_network.realm}"
    assert client.discovery.issuer == issuer
    assert client.discovery.endpoint("token_endpoint").startswith(internal.url + "/")

    # The browser's part: redirected to the public address, signs in there.
    request = ToyRequest(url=f"{APP}/private")
    start = engine.login(request)
    assert start.status == 302
    location = start.header("Location") or ""
    assert location.startswith(f"{issuer}/protocol/openid-connect/auth?")
    browser = BrowserSession()
    done = login_with_form(location, "alice", "alice-password", session=browser, stop_at=CALLBACK)
    request.url = done.url
    answer: ToyResponse = engine.callback(request)
    assert answer.status == 302, answer.body

    # The session works: its tokens came from the internal token endpoint, with the public iss.
    guard = engine.protect(ToyRequest(url=f"{APP}/private", session=request.session))
    assert guard.identity is not None
    assert guard.claims is not None
    assert guard.identity.username == "alice"
    assert guard.claims["iss"] == issuer
    assert client.fetch_userinfo(guard.token or "")["preferred_username"] == "alice"
    assert client.introspect(guard.token or "")["active"] is False  # web is not in its aud
    logout = engine.logout(
        ToyRequest(url=f"{APP}/kc/logout", method="POST", session=request.session)
    )
    assert logout.status == 302

    base = f"/realms/{split_network.realm}"
    oidc = f"{base}/protocol/openid-connect"
    # This realm's paths only: the forwarders are shared with the module's other test.
    internal_paths = [p for p in internal.paths() if p.startswith(base + "/")]
    assert set(internal_paths) == {
        f"{base}/.well-known/openid-configuration",
        f"{oidc}/token",
        f"{oidc}/certs",
        f"{oidc}/userinfo",
        f"{oidc}/token/introspect",
        f"{oidc}/logout",
    }, internal_paths
    public_paths = [p for p in public.paths() if p.startswith(base + "/")]
    assert f"{oidc}/auth" in public_paths
    assert any(p.startswith(f"{base}/login-actions/") for p in public_paths)
    assert not {f"{oidc}/token", f"{oidc}/certs", f"{oidc}/userinfo"} & set(public_paths)
    assert internal.connections >= 1
    assert "announces the internal URL" not in caplog.text
    # The server-side logout (internal) ended the user's Keycloak session.
    assert keycloak_admin.user_sessions(split_network.realm, "alice") == []


def test_keycloak_announcing_the_internal_issuer_is_named_in_a_warning(
    keycloak: KeycloakRealm, split_network: SplitNetwork, caplog: pytest.LogCaptureFixture
) -> None:
    """A Keycloak whose issuer follows the request's host (no hostname set): the kc-test realm
    reached on the internal address announces that address, which browsers cannot reach."""
    config = Config(
        server_url=keycloak.base_url,
        internal_url=split_network.internal.url,
        realm=keycloak.realm,
        client_id="kc-web",
        retries=0,
    )
    engine = _engine(config.replace(client_secret=keycloak.client("kc-web").secret))
    assert engine.client.discovery.issuer.startswith(split_network.internal.url)
    assert "announces the internal URL" in caplog.text
