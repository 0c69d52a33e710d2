"""The examples behind a real reverse proxy: nginx terminating TLS, the app under ``/app/``.

Each example runs under its usual server (gunicorn with ``SCRIPT_NAME=/app``, or uvicorn with
``--root-path /app``) on plain http; Debian's nginx serves it at
``https://127.0.0.1:<port>/app/`` with a self-signed certificate made here, and at a plain
http address standing for the internal network Keycloak posts back-channel logouts through.
The app is configured the way its docs say for a proxy (``KEYCLOAK_PUBLIC_URL``, the proxy's
forwarded headers trusted by the server). Through nginx, with the real Keycloak: a protected
page sends the browser to ``/app/kc/login``, Keycloak gets the callback
``https://.../app/kc/callback``, every cookie the app sets is ``Secure``, a back-channel logout
reaches ``/app/kc/backchannel-logout`` and ends the session, and logout returns to ``/app/``.

The default run covers one WSGI and one ASGI example; ``KC_LONG=1`` runs every example.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from apps.harness import free_port

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import backchannel_logout_to
from kc_core.testing.server import KeycloakRealm
from kc_core.testing.serving import TestTLS

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REALM = "kc-test"
CLIENT = "kc-web"
PREFIX = "/app"
SECRET = "behind-nginx-example-secret-0123456789abcdef"
_TIMEOUT = 15.0
_START_TIMEOUT = 60.0
_LOGOUT_DEADLINE = 10.0
_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
# The default run: one example per server kind; the others are in the long run.
DEFAULT_RUN = frozenset({"flask", "starlette"})


@dataclass(frozen=True, slots=True)
class Example:
    """How one example is served behind the proxy."""

    name: str
    server: str  # "gunicorn" (nginx passes /app on, SCRIPT_NAME strips it) or "uvicorn"
    target: str
    settings: tuple[tuple[str, str], ...]  # its own variables, {public}/{prefix} filled in
    logout_page: str | None  # the page with the logout form, whose action must be prefixed

    def command(self, port: int) -> list[str]:
        if self.server == "gunicorn":
            return [
                sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
                "--forwarded-allow-ips", "127.0.0.1", "--graceful-timeout", "2", self.target,
            ]  # fmt: skip
        return [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--root-path", PREFIX, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
            "--timeout-graceful-shutdown", "2", "--log-level", "warning", self.target,
        ]  # fmt: skip

    def environment(self, keycloak: KeycloakRealm, public: str, work: Path) -> dict[str, str]:
        env = {"KEYCLOAK_URL": keycloak.base_url, "KEYCLOAK_SERVER_URL": keycloak.base_url}
        if self.server == "gunicorn":
            env["SCRIPT_NAME"] = PREFIX
        for name, value in self.settings:
            env[name] = value.format(public=public, prefix=PREFIX, secret=SECRET, work=work)
        return env


EXAMPLES_BEHIND_NGINX = {
    e.name: e
    for e in (
        Example(
            "flask",
            "gunicorn",
            "app:create_app()",
            (("FLASK_SECRET_KEY", "{secret}"), ("FLASK_KEYCLOAK_PUBLIC_URL", "{public}")),
            "/profile",
        ),
        Example(
            "pyramid",
            "gunicorn",
            "app:create_app()",
            (("SESSION_SECRET", "{secret}"), ("KEYCLOAK_PUBLIC_URL", "{public}")),
            "/",
        ),
        Example(
            "django",
            "gunicorn",
            "kc_example.wsgi",
            (
                ("DJANGO_SECRET_KEY", "{secret}"),
                ("DJANGO_SESSION_DIR", "{work}"),
                ("KEYCLOAK_PUBLIC_URL", "{public}"),
            ),
            "/profile",
        ),
        Example(
            "starlette",
            "uvicorn",
            "app:app",
            (("SECRET_KEY", "{secret}"), ("KEYCLOAK_PUBLIC_URL", "{public}")),
            "/profile",
        ),
        Example(
            "fastapi",
            "uvicorn",
            "app:app",
            (("SECRET_KEY", "{secret}"), ("KEYCLOAK_PUBLIC_URL", "{public}")),
            None,
        ),
    )
}


def _find_nginx() -> str | None:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if Path(found).is_file() else None


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"{what} did not start:\n{tail}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL to what is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


@dataclass(frozen=True, slots=True)
class Proxy:
    """nginx in front of one app: its public https origin and internal http origin."""

    public: str
    internal: str
    access_log: Path


def _nginx_conf(work: Path, tls: TestTLS, https: int, http: int, app: int, strip: bool) -> str:
    # gunicorn strips SCRIPT_NAME itself; uvicorn's --root-path wants the prefix gone.
    upstream = f"http://127.0.0.1:{app}{'/' if strip else f'{PREFIX}/'}"
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    temp += f"\n    uwsgi_temp_path {work / 'uwsgi'};\n    scgi_temp_path {work / 'scgi'};"
    location = f"""
        location {PREFIX}/ {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_redirect off;
        }}"""
    return f"""
daemon off;
worker_processes 1;
pid {work / "nginx.pid"};
events {{ worker_connections 64; }}
http {{
    access_log {work / "access.log"};
{temp}
    server {{
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {tls.cert_file};
        ssl_certificate_key {tls.key_file};
{location}
    }}
    server {{
        listen 127.0.0.1:{http};
{location}
    }}
}}
"""


@contextlib.contextmanager
def nginx_in_front(nginx: str, work: Path, app_port: int, *, strip: bool) -> Iterator[Proxy]:
    """nginx proxying ``/app/`` to the app, over https (public) and http (internal)."""
    tls = TestTLS.create(work)
    https, http = free_port(), free_port()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / kind).mkdir(mode=0o777, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(_nginx_conf(work, tls, https, http, app_port, strip))
    log = work / "error.log"
    process = subprocess.Popen(
        [nginx, "-p", str(work), "-c", str(conf), "-e", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_port(https, process, log, "nginx")
        _wait_for_port(http, process, log, "nginx")
        yield Proxy(f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}", work / "access.log")
    finally:
        _stop(process)


@contextlib.contextmanager
def example_served(
    example: Example, keycloak: KeycloakRealm, public: str, port: int, work: Path
) -> Iterator[None]:
    sessions = work / "sessions"
    sessions.mkdir(exist_ok=True)
    log = work / f"{example.name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            example.command(port),
            cwd=EXAMPLES / example.name,
            env={**os.environ, **example.environment(keycloak, public, sessions)},
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, process, log, example.name)
        yield
    finally:
        _stop(process)


@contextlib.contextmanager
def https_redirect_uris(admin: KeycloakAdmin, public: str) -> Iterator[None]:
    """Let kc-web's logins return to the proxy's https origin (the realm has http only)."""
    client = admin.client(REALM, CLIENT)
    previous = list(client.get("redirectUris") or [])
    admin.update_client(REALM, CLIENT, redirectUris=[*previous, f"{public}{PREFIX}/*"])
    try:
        yield
    finally:
        admin.update_client(REALM, CLIENT, redirectUris=previous)


@dataclass
class Browser:
    """A browser trusting the proxy's certificate, recording the cookies the app sets."""

    session: BrowserSession
    app_cookies: list[str]


def _browser(tls_cert: Path, public: str) -> Browser:
    session = BrowserSession()
    session.verify = str(tls_cert)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE wins over the proxy's certificate
    session.max_redirects = 10
    recorded: list[str] = []

    def record(response: requests.Response, *args: object, **kwargs: object) -> None:
        if response.url.startswith(public):
            recorded.extend(response.raw.headers.getlist("Set-Cookie"))

    session.hooks["response"].append(record)
    return Browser(session, recorded)


def _log_in(keycloak: KeycloakRealm, browser: Browser, public: str) -> requests.Response:
    alice = keycloak.user("alice")
    result = login_with_form(
        f"{public}{PREFIX}/profile", alice.username, alice.password, session=browser.session
    )
    return result.response


def _location(response: requests.Response, base: str) -> str:
    location = response.headers.get("Location", "")
    return base + location if location.startswith("/") else location


@pytest.fixture(scope="module")
def nginx() -> str:
    found = _find_nginx()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: scripts/install-system-deps.sh installs it")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


def _cases() -> list[object]:
    return [
        pytest.param(name, marks=() if name in DEFAULT_RUN else pytest.mark.long)
        for name in sorted(EXAMPLES_BEHIND_NGINX)
    ]


@pytest.mark.parametrize("name", _cases())
def test_example_behind_nginx_with_tls_and_a_path_prefix(
    name: str,
    nginx: str,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    tmp_path: Path,
) -> None:
    example = EXAMPLES_BEHIND_NGINX[name]
    app_port = free_port()
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(
            nginx_in_front(nginx, tmp_path, app_port, strip=example.server == "uvicorn")
        )
        stack.enter_context(example_served(example, keycloak, proxy.public, app_port, tmp_path))
        stack.enter_context(https_redirect_uris(keycloak_admin, proxy.public))
        backchannel = f"{proxy.internal}{PREFIX}/kc/backchannel-logout"
        stack.enter_context(backchannel_logout_to(keycloak_admin, REALM, backchannel))
        public = proxy.public
        browser = _browser(tmp_path / "cert.pem", public)
        web = browser.session

        # A visitor is sent to the prefixed login, which names the prefixed https callback.
        visit = web.get(f"{public}{PREFIX}/profile", allow_redirects=False, timeout=_TIMEOUT)
        assert visit.status_code in (302, 303, 307), visit.text[-1000:]
        login_url = _location(visit, public)
        assert login_url.startswith(f"{public}{PREFIX}/kc/login?"), login_url
        assert parse_qs(urlsplit(login_url).query)["next"] == [f"{PREFIX}/profile"]
        to_keycloak = web.get(login_url, allow_redirects=False, timeout=_TIMEOUT)
        authorize = _location(to_keycloak, public)
        assert authorize.startswith(keycloak.auth_url), authorize
        query = parse_qs(urlsplit(authorize).query)
        assert query["redirect_uri"] == [f"{public}{PREFIX}/kc/callback"]

        # The login lands on the page first asked for; every cookie of the app is Secure.
        page = _log_in(keycloak, browser, public)
        assert page.url == f"{public}{PREFIX}/profile", page.url
        assert page.status_code == 200
        assert "alice" in page.text
        assert browser.app_cookies, "the app set no cookie"
        for header in browser.app_cookies:
            cookie = SimpleCookie(header)
            for morsel in cookie.values():
                assert morsel["secure"], f"not Secure behind https: {header}"
        if example.logout_page is not None:
            form_page = web.get(f"{public}{PREFIX}{example.logout_page}", timeout=_TIMEOUT)
            assert f'action="{PREFIX}/kc/logout"' in form_page.text, form_page.text[-1500:]

        # Keycloak's back-channel logout reaches the prefixed endpoint and ends the session.
        keycloak_admin.logout_user(REALM, "alice")
        deadline = time.monotonic() + _LOGOUT_DEADLINE
        while True:
            after = web.get(f"{public}{PREFIX}/profile", allow_redirects=False, timeout=_TIMEOUT)
            if after.status_code in (302, 303, 307):
                break
            assert time.monotonic() < deadline, "the back-channel logout did not end the session"
            time.sleep(0.1)
        logged = proxy.access_log.read_text()
        assert f'"POST {PREFIX}/kc/backchannel-logout HTTP/1.1" 200' in logged, logged[-2000:]

        # Logout (a same-origin POST) goes to Keycloak and comes back to the prefixed home.
        assert _log_in(keycloak, browser, public).status_code == 200
        fields: dict[str, str] = {}
        if example.logout_page is not None:
            # The app's own form, with its CSRF token where the framework wants one.
            form_page = web.get(f"{public}{PREFIX}{example.logout_page}", timeout=_TIMEOUT)
            fields = dict(_HIDDEN_INPUT.findall(form_page.text))
        out = web.post(
            f"{public}{PREFIX}/kc/logout",
            data=fields,
            headers={"Origin": public, "Referer": f"{public}{PREFIX}/"},
            allow_redirects=False,
            timeout=_TIMEOUT,
        )
        assert out.status_code in (302, 303), out.text[-1000:]
        end_session = _location(out, public)
        assert end_session.startswith(keycloak.issuer), end_session
        returns = parse_qs(urlsplit(end_session).query)["post_logout_redirect_uri"]
        assert returns == [f"{public}{PREFIX}/"]
        gone = web.get(f"{public}{PREFIX}/profile", allow_redirects=False, timeout=_TIMEOUT)
        assert gone.status_code in (302, 303, 307)
