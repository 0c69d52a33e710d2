"""Adapters are found through real ``kc_core`` entry points of installed distributions.

A throwaway virtual environment (no system site-packages) gets kc-core and the example Bottle
adapter; a second tiny adapter distribution, built here for its own request class, is added
and removed again. A script run in that environment checks what ``Plugins()`` discovers and
that each adapter only ever handles its own requests, through the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BOTTLE_ADAPTER = REPO / "examples" / "bottle_adapter"

TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "kc-tiny-adapter"
version = "0.1.0"
dependencies = ["kc-core"]

[project.entry-points.kc_core]
tiny = "kc_tiny.hooks"

[tool.setuptools]
packages = ["kc_tiny"]
"""

TINY_INIT = '''\
"""A framework of one class, and its kc adapter (hooks in kc_tiny.hooks)."""

from dataclasses import dataclass, field


@dataclass
class TinyRequest:
    method: str = "GET"
    path: str = "/"
    headers: dict = field(default_factory=dict)
    session: dict = field(default_factory=dict)


@dataclass
class TinyResponse:
    status: int
    body: bytes = b""
    headers: list = field(default_factory=list)


SEEN = []  # every request any tiny hook was asked about
'''

TINY_HOOKS = """\
from kc_core.plugins import hookimpl

from . import SEEN, TinyRequest, TinyResponse


def _seen(request):
    SEEN.append(request)
    return request


@hookimpl
def kc_request_types():
    return (TinyRequest,)

@hookimpl
def kc_request_method(request):
    return _seen(request).method

@hookimpl
def kc_request_url(request):
    return "http://tiny.test" + _seen(request).path

@hookimpl
def kc_request_path(request):
    return _seen(request).path

@hookimpl
def kc_request_query(request):
    return {}

@hookimpl
def kc_request_header(request, name):
    return _seen(request).headers.get(name.lower())

@hookimpl
def kc_request_cookies(request):
    return {}

@hookimpl
def kc_request_form(request):
    return {}

@hookimpl
def kc_request_client_address(request):
    return None

@hookimpl
def kc_request_is_secure(request):
    return False

@hookimpl
def kc_session(request):
    return _seen(request).session

@hookimpl
def kc_redirect(request, location, headers):
    return TinyResponse(302, b"", [("Location", location), *headers])

@hookimpl
def kc_response(request, status, body, content_type, headers):
    return TinyResponse(status, body, list(headers))
"""

# Runs inside the throwaway environment; prints one JSON line for the test to check.
PROBE = """\
import json, sys
from kc_core import Config
from kc_core.engine import Engine
from kc_core.plugins import AdapterNotFound, Plugins

report = {"adapters": sorted(Plugins().adapter_names())}
plugins = Plugins()
engine = Engine(Config(server_url="http://kc.invalid", realm="r", client_id="c"), plugins=plugins)

import bottle
bottle_request = bottle.BaseRequest(
    {"REQUEST_METHOD": "GET", "PATH_INFO": "/api", "HTTP_AUTHORIZATION": "Basic eDp5",
     "wsgi.url_scheme": "http", "HTTP_HOST": "app.test", "SERVER_NAME": "app.test",
     "SERVER_PORT": "80", "QUERY_STRING": ""}
)
report["bottle_adapter"] = plugins.adapter_for(bottle_request).name
# Not a Bearer token: a 401 the owning adapter builds, with no network at all.
answer = engine.protect(bottle_request).response
report["bottle_answer"] = [type(answer).__module__, type(answer).__name__, answer.status_code]

try:
    from kc_tiny import SEEN, TinyRequest
except ImportError:
    report["tiny"] = None
else:
    tiny_request = TinyRequest(path="/api", headers={"authorization": "Basic eDp5"})
    report["tiny_adapter"] = plugins.adapter_for(tiny_request).name
    answer = engine.protect(tiny_request).response
    report["tiny_answer"] = [type(answer).__module__, type(answer).__name__, answer.status]
    report["tiny_saw_only_tiny_requests"] = all(isinstance(r, TinyRequest) for r in SEEN)
    report["tiny_calls"] = len(SEEN)


class Unknown:
    pass

try:
    plugins.adapter_for(Unknown())
except AdapterNotFound as exc:
    report["unknown"] = str(exc)
print(json.dumps(report))
"""


class ThrowawayEnv:
    def __init__(self, root: Path) -> None:
        self.root = root
        bindir = "Scripts" if sys.platform == "win32" else "bin"
        self.python = root / bindir / ("python.exe" if sys.platform == "win32" else "python")

    def pip(self, *args: str) -> None:
        completed = subprocess.run(
            [str(self.python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr

    def probe(self) -> dict[str, object]:
        completed = subprocess.run(
            [str(self.python), "-c", PROBE], capture_output=True, text=True, timeout=120
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
        return result


@pytest.fixture(scope="session")
def throwaway_env(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayEnv:
    if not (BOTTLE_ADAPTER / "pyproject.toml").exists():
        pytest.skip("examples/bottle_adapter is not there")
    root = tmp_path_factory.mktemp("adapters-venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(root)
    env = ThrowawayEnv(root)
    env.pip("install", "-e", str(REPO), str(BOTTLE_ADAPTER))
    return env


@pytest.fixture
def tiny_adapter(tmp_path: Path) -> Path:
    source = tmp_path / "kc-tiny-adapter"
    (source / "kc_tiny").mkdir(parents=True)
    (source / "pyproject.toml").write_text(TINY_PYPROJECT)
    (source / "kc_tiny" / "__init__.py").write_text(TINY_INIT)
    (source / "kc_tiny" / "hooks.py").write_text(textwrap.dedent(TINY_HOOKS))
    return source


def test_the_environment_is_isolated_from_the_dev_venv(throwaway_env: ThrowawayEnv) -> None:
    config = (throwaway_env.root / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config


def test_with_one_adapter_installed_only_its_plugin_is_discovered(
    throwaway_env: ThrowawayEnv,
) -> None:
    report = throwaway_env.probe()

    assert report["adapters"] == ["bottle"]
    assert report["bottle_adapter"] == "bottle"
    assert report["bottle_answer"] == ["bottle", "HTTPResponse", 401]
    assert report["tiny"] is None
    assert "no kc adapter handles __main__.Unknown" in str(report["unknown"])
    assert str(report["unknown"]).endswith("installed adapters: bottle")


def test_with_two_adapters_installed_each_handles_only_its_own_requests(
    throwaway_env: ThrowawayEnv, tiny_adapter: Path
) -> None:
    throwaway_env.pip("install", "--no-deps", str(tiny_adapter))
    try:
        report = throwaway_env.probe()
    finally:
        throwaway_env.pip("uninstall", "-y", "kc-tiny-adapter")

    assert report["adapters"] == ["bottle", "tiny"]
    assert report["bottle_adapter"] == "bottle"
    assert report["bottle_answer"] == ["bottle", "HTTPResponse", 401]
    assert report["tiny_adapter"] == "tiny"
    assert report["tiny_answer"] == ["kc_tiny", "TinyResponse", 401]
    assert report["tiny_saw_only_tiny_requests"] is True
    assert isinstance(report["tiny_calls"], int)
    assert report["tiny_calls"] > 0
