"""The examples as a user deploys them: several worker processes sharing one Redis token store.

Each example runs under its usual multi-process server, started the way its docstring says
(Flask, Django and Pyramid under ``gunicorn -w 3``, Starlette and FastAPI under ``uvicorn
--workers 2``), with its secret and ``KEYCLOAK_TOKEN_STORE`` from the environment, against a
real ``redis-server`` and the real Keycloak. Alice logs in through Keycloak's form; her pages
are served by every worker; bearer tokens of kc-web pass and those of another client are
refused; a back-channel logout posted to one worker ends her session on all of them; logout
by POST ends it too. The same server with the memory store ends, after login, on kc's error
page naming the memory token store, never in a redirect loop.

Which worker answered is read from the server's access log, which records the worker's pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from apps.harness import free_port

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form, parse_page
from kc_core.testing.conformance import backchannel_logout_to
from kc_core.testing.redis_server import RedisServer
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REALM = "kc-test"
SECRET = "multiprocess-example-secret-0123456789abcdef"
PROTECTED_REQUESTS = 20
CONCURRENCY = 4
_TIMEOUT = 15.0
_START_TIMEOUT = 60.0
_LOGOUT_DEADLINE = 5.0
# gunicorn's "<pid> GET /path 200" and the uvicorn log config's "pid GET /path HTTP/1.1 200".
_ACCESS_LINE = re.compile(r"^<?(\d+)>? (\w+) (\S+)")


@dataclass(frozen=True, slots=True)
class Example:
    """How one example is deployed: its folder, server, workers and environment."""

    name: str
    server: str  # "gunicorn" or "uvicorn"
    target: str
    workers: int
    secret_variable: str
    store_variable: str
    logout_page: str | None  # the page holding the logout form (None: post without one)

    def command(self, port: int, access_log: Path) -> list[str]:
        if self.server == "gunicorn":
            return [
                sys.executable, "-m", "gunicorn", "-w", str(self.workers),
                "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2",
                "--access-logfile", str(access_log),
                "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
                self.target,
            ]  # fmt: skip
        log_config = access_log.with_suffix(".json")
        log_config.write_text(json.dumps(_uvicorn_log_config(access_log)))
        return [
            sys.executable, "-m", "uvicorn", "--workers", str(self.workers),
            "--host", "127.0.0.1", "--port", str(port),
            "--log-config", str(log_config), "--timeout-graceful-shutdown", "2",
            self.target,
        ]  # fmt: skip

    def environment(self, keycloak: KeycloakRealm, store: str, session_dir: Path) -> dict[str, str]:
        env = {
            self.secret_variable: SECRET,
            self.store_variable: store,
            "KEYCLOAK_URL": keycloak.base_url,
            "KEYCLOAK_SERVER_URL": keycloak.base_url,
        }
        if self.name == "django":
            env["DJANGO_SESSION_DIR"] = str(session_dir)
        return env


def _uvicorn_log_config(access_log: Path) -> dict[str, Any]:
    """uvicorn's access log, with the worker's pid, to a file (every worker configures it)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": "%(process)d %(request_line)s %(status_code)s",
                "use_colors": False,
            }
        },
        "handlers": {
            "access": {
                "class": "logging.FileHandler",
                "filename": str(access_log),
                "formatter": "access",
            }
        },
        "loggers": {
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False}
        },
    }


# As each example's docstring deploys it.
EXAMPLE_DEPLOYMENTS = {
    e.name: e
    for e in (
        Example(
            name="flask",
            server="gunicorn",
            target="app:create_app()",
            workers=3,
            secret_variable="FLASK_SECRET_KEY",
            store_variable="FLASK_KEYCLOAK_TOKEN_STORE",
            logout_page="/profile",
        ),
        Example(
            name="starlette",
            server="uvicorn",
            target="app:app",
            workers=2,
            secret_variable="SECRET_KEY",
            store_variable="KEYCLOAK_TOKEN_STORE",
            logout_page="/profile",
        ),
        Example(
            name="fastapi",
            server="uvicorn",
            target="app:app",
            workers=2,
            secret_variable="SECRET_KEY",
            store_variable="KEYCLOAK_TOKEN_STORE",
            logout_page=None,
        ),
        Example(
            name="django",
            server="gunicorn",
            target="kc_example.wsgi",
            workers=3,
            secret_variable="DJANGO_SECRET_KEY",
            store_variable="KEYCLOAK_TOKEN_STORE",
            logout_page="/profile",
        ),
        Example(
            name="pyramid",
            server="gunicorn",
            target="app:create_app()",
            workers=3,
            secret_variable="SESSION_SECRET",
            store_variable="KEYCLOAK_TOKEN_STORE",
            logout_page="/",
        ),
    )
}


class ServerProcess:
    """One example under its multi-process server, in a process group of its own."""

    def __init__(self, example: Example, port: int, env: dict[str, str], log_dir: Path) -> None:
        self.example = example
        self.url = f"http://127.0.0.1:{port}"
        self.access_log = log_dir / f"{example.name}-{port}-access.log"
        self.output = log_dir / f"{example.name}-{port}.log"
        self.access_log.touch()
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                example.command(port, self.access_log),
                cwd=EXAMPLES / example.name,
                env={**os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the group holds the workers: teardown kills them all
            )

    def wait_until_every_worker_answers(self) -> None:
        """Poll the public home page until each worker has answered at least once."""
        deadline = time.monotonic() + _START_TIMEOUT
        while len(self.worker_pids("/")) < self.example.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.output.read_text(errors="replace")[-3000:]
                pytest.fail(f"{self.example.name} did not start all workers:\n{tail}")
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"{self.url}/", headers={"Connection": "close"}, timeout=_TIMEOUT)
            time.sleep(0.05)

    def access_lines(self) -> list[tuple[int, str, str]]:
        """``(pid, method, path)`` of every request logged so far."""
        found = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            match = _ACCESS_LINE.match(line)
            if match:
                found.append((int(match[1]), match[2], match[3].split("?", 1)[0]))
        return found

    def worker_pids(self, path: str, since: int = 0) -> set[int]:
        """The pids of the workers that logged a request for ``path`` (after line ``since``)."""
        return {pid for pid, _, logged in self.access_lines()[since:] if logged == path}

    def stop(self) -> None:
        """SIGTERM to the whole group, then SIGKILL to what is left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers that outlived their master
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


@contextlib.contextmanager
def deployed(
    example: Example, keycloak: KeycloakRealm, store: str, log_dir: Path
) -> Iterator[ServerProcess]:
    session_dir = log_dir / f"{example.name}-sessions"
    session_dir.mkdir(exist_ok=True)
    env = example.environment(keycloak, store, session_dir)
    server = ServerProcess(example, free_port(), env, log_dir)
    try:
        server.wait_until_every_worker_answers()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=sorted(EXAMPLE_DEPLOYMENTS))
def app(
    request: pytest.FixtureRequest,
    keycloak: KeycloakRealm,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    example = EXAMPLE_DEPLOYMENTS[request.param]
    log_dir = tmp_path_factory.mktemp(f"{example.name}-redis")
    with deployed(example, keycloak, redis_server.url, log_dir) as server:
        yield server


def log_alice_in(keycloak: KeycloakRealm, app: ServerProcess) -> BrowserSession:
    browser = BrowserSession()
    browser.max_redirects = 10  # a redirect loop fails fast instead of after 30 hops
    alice = keycloak.user("alice")
    result = login_with_form(f"{app.url}/profile", alice.username, alice.password, session=browser)
    assert result.response.status_code == 200, result.response.text[-2000:]
    assert "alice" in result.response.text
    return browser


def protected_burst(
    app: ServerProcess, browser: BrowserSession, count: int = PROTECTED_REQUESTS
) -> list[requests.Response]:
    """``count`` requests for /profile with the browser's cookies, a new connection each (so
    they spread over the workers), ``CONCURRENCY`` at a time; redirects are not followed."""
    headers = {**browser.headers, "Connection": "close"}

    def one(_: int) -> requests.Response:
        return requests.get(
            f"{app.url}/profile",
            headers=headers,
            cookies=browser.cookies.copy(),
            allow_redirects=False,
            timeout=_TIMEOUT,
        )

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, range(count)))


def redirects_to_login(response: requests.Response, keycloak: KeycloakRealm) -> bool:
    location = response.headers.get("Location", "")
    return response.status_code in (302, 303) and (
        "/kc/login" in location or location.startswith(keycloak.auth_url)
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until it holds; the seconds it took (fail at the deadline)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def new_session_id(admin: KeycloakAdmin, before: set[str]) -> str:
    """The id of alice's one Keycloak session that is not in ``before``."""
    started = {str(s["id"]) for s in admin.user_sessions(REALM, "alice")} - before
    assert len(started) == 1, started
    return started.pop()


def test_every_worker_serves_a_session_started_on_any_of_them(
    keycloak: KeycloakRealm, app: ServerProcess
) -> None:
    browser = log_alice_in(keycloak, app)
    logged = len(app.access_lines())

    answers = protected_burst(app, browser)

    for answer in answers:
        assert answer.status_code == 200, answer.text[-2000:]
        assert "alice" in answer.text
    wait_for(
        lambda: (
            len([1 for _, _, p in app.access_lines()[logged:] if p == "/profile"])
            >= PROTECTED_REQUESTS
        ),
        5.0,
        "access log lines of the burst",
    )
    workers = app.worker_pids("/profile", since=logged)
    print(f"\n{app.example.name}: {PROTECTED_REQUESTS} requests answered by {len(workers)} workers")
    assert len(workers) >= 2, "the requests landed on one worker only"


def test_bearer_tokens_of_kc_web_pass_and_of_another_client_are_refused_naming_its_azp(
    keycloak: KeycloakRealm, app: ServerProcess, access_token: Callable[..., str]
) -> None:
    own = requests.get(
        f"{app.url}/api/reports",
        headers={"Authorization": f"Bearer {access_token('alice')}"},
        timeout=_TIMEOUT,
    )
    assert own.status_code == 200, own.text
    assert own.json()["reader"] == "alice"

    service = keycloak.client("kc-service")
    grant = requests.post(
        keycloak.token_url,
        data={"grant_type": "client_credentials"},
        auth=(service.client_id, service.secret or ""),
        timeout=_TIMEOUT,
    )
    other = requests.get(
        f"{app.url}/api/reports",
        headers={"Authorization": f"Bearer {grant.json()['access_token']}"},
        timeout=_TIMEOUT,
    )
    assert other.status_code == 401, other.text
    challenge = other.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert "azp='kc-service'" in challenge


def test_backchannel_logout_to_one_worker_ends_the_session_on_every_worker(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin, app: ServerProcess
) -> None:
    before = {s["id"] for s in keycloak_admin.user_sessions(REALM, "alice")}
    browser = log_alice_in(keycloak, app)
    sid = new_session_id(keycloak_admin, before)
    assert all(r.status_code == 200 for r in protected_burst(app, browser, 6))
    logged = len(app.access_lines())

    with backchannel_logout_to(keycloak_admin, REALM, f"{app.url}/kc/backchannel-logout"):
        keycloak_admin.delete_session(REALM, sid)
        took = wait_for(
            lambda: all(redirects_to_login(r, keycloak) for r in protected_burst(app, browser, 6)),
            _LOGOUT_DEADLINE,
            "the session ended on every worker",
        )

    print(f"\n{app.example.name}: back-channel logout seen by every worker after {took:.2f} s")
    after = protected_burst(app, browser)
    assert all(redirects_to_login(r, keycloak) for r in after), [r.status_code for r in after]
    # A worker writes its access log line just after its answer: poll for the last ones.
    wait_for(
        lambda: bool(app.worker_pids("/kc/backchannel-logout", since=logged)),
        5.0,
        "Keycloak's logout token posted to a worker",
    )
    wait_for(
        lambda: len(app.worker_pids("/profile", since=logged)) >= 2,
        5.0,
        "requests after the logout answered by several workers",
    )


def test_logout_by_post_ends_the_session_here_and_at_keycloak(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin, app: ServerProcess
) -> None:
    before = {s["id"] for s in keycloak_admin.user_sessions(REALM, "alice")}
    browser = log_alice_in(keycloak, app)
    sid = new_session_id(keycloak_admin, before)
    action, fields = f"{app.url}/kc/logout", {}
    if app.example.logout_page is not None:
        page = browser.get(f"{app.url}{app.example.logout_page}", timeout=_TIMEOUT)
        form = next(f for f in parse_page(page).forms if "logout" in f.action)
        action, fields = form.action, dict(form.fields)

    ended = browser.post(action, data=fields, headers={"Origin": app.url}, timeout=_TIMEOUT)

    assert ended.status_code == 200, ended.text[-2000:]
    assert ended.history, "logout redirects through Keycloak's end-session endpoint"
    assert ended.history[0].headers["Location"].startswith(keycloak.logout_url)
    assert ended.url.startswith(app.url)
    assert sid not in {s["id"] for s in keycloak_admin.user_sessions(REALM, "alice")}
    after = protected_burst(app, browser)
    assert all(redirects_to_login(r, keycloak) for r in after), [r.status_code for r in after]


@pytest.mark.parametrize("name", sorted(EXAMPLE_DEPLOYMENTS))
def test_several_workers_with_the_memory_store_end_on_an_error_page_not_a_loop(
    name: str, keycloak: KeycloakRealm, tmp_path: Path
) -> None:
    example = EXAMPLE_DEPLOYMENTS[name]
    with deployed(example, keycloak, "memory", tmp_path) as server:
        browser = BrowserSession()
        browser.max_redirects = 10  # a loop raises TooManyRedirects, failing the test
        result = login_with_form(
            f"{server.url}/profile", "alice", "alice-password", session=browser
        )
        page = result.response
        # The login's own worker may answer first; within some requests another one does
        # (on a loaded machine one worker may accept many connections in a row).
        for _ in range(150):
            if page.status_code != 200:
                break
            page = browser.get(
                f"{server.url}/profile", headers={"Connection": "close"}, timeout=_TIMEOUT
            )
        assert page.status_code == 401, page.text[-2000:]
        assert "memory token store" in page.text
        assert len(page.history) <= 4, [r.url for r in page.history]
