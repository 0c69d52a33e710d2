"""The distributions' metadata: PEP 621, one version source each, bounds in step with tox.

Read from the pyproject.toml files themselves (no build), so a wrong bound fails here fast.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {
    "kc-core": (REPO, "kc_core"),
    "kc-flask": (REPO / "kc_plugins" / "flask", "kc_flask"),
    "kc-starlette": (REPO / "kc_plugins" / "starlette", "kc_starlette"),
    "kc-django": (REPO / "kc_plugins" / "django", "kc_django"),
    "kc-pyramid": (REPO / "kc_plugins" / "pyramid", "kc_pyramid"),
    "kc-bottle-example": (REPO / "examples" / "bottle_adapter", "kc_bottle"),
}
_LOWER = re.compile(r"^([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)")


def project(root: Path) -> dict[str, object]:
    data = tomllib.loads((root / "pyproject.toml").read_text())
    table: dict[str, object] = data["project"]
    return table


def _release(version: str) -> list[str]:
    """``3.0.0`` and ``3.0`` alike: trailing zero parts dropped."""
    parts = version.split(".")
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return parts


def min_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "tests" / "packaging" / "min-versions.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower()] = version.strip()
    return pins


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_each_distribution_has_pep621_metadata_and_a_dynamic_version(name: str) -> None:
    root, package = DISTRIBUTIONS[name]
    table = project(root)
    assert table["name"] == name
    assert table["dynamic"] == ["version"]
    assert "version" not in table
    assert not (root / "setup.cfg").exists()
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["dynamic"]["version"] == {"attr": f"{package}.__version__"}
    assert re.search(
        r'^__version__ = "\d+\.\d+\.\d+"$', (root / package / "__init__.py").read_text(), re.M
    )


def test_the_core_declares_what_it_imports() -> None:
    dependencies = {_LOWER.match(d).group(1) for d in project(REPO)["dependencies"]}  # type: ignore[union-attr, attr-defined]
    assert {"requests", "josepy", "pluggy", "cryptography"} <= dependencies


@pytest.mark.parametrize("name", sorted(set(DISTRIBUTIONS) - {"kc-core"}))
def test_adapters_pin_a_compatible_kc_core(name: str) -> None:
    dependencies = project(DISTRIBUTIONS[name][0])["dependencies"]
    core = [d for d in dependencies if d.startswith("kc-core")]  # type: ignore[attr-defined]
    assert core == ["kc-core>=0.1,<1"]


def test_the_core_ships_no_pytest11_entry_point_and_no_private_key() -> None:
    table = project(REPO)
    assert "pytest11" not in table.get("entry-points", {})  # type: ignore[operator]
    assert not list((REPO / "kc_core").rglob("*.pem"))


def test_min_versions_are_the_declared_lower_bounds() -> None:
    pins = min_versions()
    for root, _ in DISTRIBUTIONS.values():
        table = project(root)
        requirements = list(table["dependencies"])  # type: ignore[call-overload]
        for extra in dict(table.get("optional-dependencies", {})).values():  # type: ignore[call-overload]
            requirements.extend(extra)
        for requirement in requirements:
            found = _LOWER.match(requirement)
            if found is None or found.group(1) in ("kc-core", "pytest"):
                continue
            name, bound = found.group(1).lower(), found.group(2)
            assert name in pins, f"{name} (>= {bound}) has no pin in min-versions.txt"
            assert _release(pins[name]) == _release(bound), (
                f"{name}: declared >= {bound}, tested with {pins[name]}"
            )
