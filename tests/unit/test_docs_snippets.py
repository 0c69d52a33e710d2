"""Every ```python snippet in README.md and docs/*.md compiles, and runs.

Snippets of one page run in order in one namespace (a later snippet may use an earlier one's
``app``), in a temporary directory, with ``KEYCLOAK_*`` and ``SECRET_KEY`` set to a Keycloak
that is not there: building apps and middleware needs no server, and nothing here sends a
request. A snippet that cannot run without a live Keycloak or a project around it has
``<!-- snippet: not run (reason) -->`` on the line above it; it is still compiled. A snippet
marked ``<!-- tested: NAME -->`` is run by the page's own tests (docs/django.md: by
tests/kc_plugins/django, inside a real project), so it is compiled here only.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_NOT_RUN = re.compile(r"<!--\s*snippet:\s*not run\s*\(([^)]+)\)\s*-->\s*$")
_TESTED = re.compile(r"<!--\s*tested:\s*([\w.-]+)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    code: str
    not_run: str | None  # the reason given, for a snippet that is only compiled
    tested_elsewhere: bool = False  # run by another test (``<!-- tested: NAME -->``)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def snippets_of(page: Path) -> list[Snippet]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _NOT_RUN.search(before)
        tested = _TESTED.search(before)
        reason = marker.group(1) if marker else None
        if tested:
            reason = f"run by the page's own tests as {tested.group(1)}"
        found.append(Snippet(page, line, match.group(1), reason, tested is not None))
    return found


ALL = [s for page in PAGES for s in snippets_of(page)]


def test_the_pages_have_snippets_and_few_are_marked_not_run() -> None:
    assert len(ALL) > 20
    not_run = [s.where for s in ALL if s.not_run and not s.tested_elsewhere]
    assert len(not_run) <= 29, not_run  # fragments, calls to a live Keycloak: only fewer


@pytest.mark.parametrize("snippet", ALL, ids=[s.where for s in ALL])
def test_every_snippet_compiles(snippet: Snippet) -> None:
    code = snippet.code
    if snippet.not_run and "return" in code:
        # A marked fragment of a function body: compile it as one.
        code = "async def _fragment():\n" + "".join(f"    {line}\n" for line in code.splitlines())
    compile(code, snippet.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.fixture
def offline_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in {
        "KEYCLOAK_SERVER_URL": f"http://127.0.0.1:{port}",
        "KEYCLOAK_REALM": "kc-test",
        "KEYCLOAK_CLIENT_ID": "kc-web",
        "KEYCLOAK_CLIENT_SECRET": "kc-web-secret",
        "KEYCLOAK_CONNECT_TIMEOUT": "0.2",
        "KEYCLOAK_RETRIES": "0",
        "SECRET_KEY": "docs-snippet-secret-0123456789abcdef",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only(socket.getaddrinfo))
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:  # settings modules a snippet defined
        if name.startswith("docs_snippet"):
            del sys.modules[name]


def _loopback_only(getaddrinfo: Any) -> Any:
    """``getaddrinfo`` refusing every host but loopback: a snippet never reaches the network."""

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1", None):
            raise OSError(f"docs snippets stay on loopback; {host!r} was asked for")
        return getaddrinfo(host, *args, **kwargs)

    return resolve


RUN_PAGES = sorted({s.page for s in ALL if not s.not_run})


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
@pytest.mark.usefixtures("offline_environment")
def test_every_snippet_runs(page: Path) -> None:
    # The page runs as a module (frameworks such as Pyramid look their caller up by name).
    module = types.ModuleType("docs_snippet")
    sys.modules["docs_snippet"] = module
    namespace: dict[str, object] = module.__dict__
    namespace["os"] = os
    failures: list[str] = []
    for snippet in snippets_of(page):
        if snippet.not_run:
            continue
        try:
            exec(compile(snippet.code, snippet.where, "exec"), namespace)
        except Exception as exc:
            failures.append(f"{snippet.where}: {type(exc).__name__}: {exc}"[:300])
    assert not failures, "\n".join(failures)
