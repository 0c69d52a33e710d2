"""The adapter toolkit's package: one ``__all__`` over its topic modules, no framework loaded.

Every public name a topic module defines is importable as ``from kc_core.adapters import X``,
and importing the toolkit loads neither a web framework nor the engine beyond its value types.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import kc_core.adapters as toolkit

TOPICS = ("decorators", "users", "settings", "hooks", "endpoints", "seed")
# Type variables and aliases of the signatures: public in their module, not toolkit names.
TYPING_HELPERS = {"Build", "Built", "Protection", "User", "View"}


def defined_names(module_name: str) -> set[str]:
    """The public names ``module_name`` defines at its top level (read from its source)."""
    source = Path(toolkit.__path__[0], f"{module_name}.py").read_text()
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")} - TYPING_HELPERS


def test_the_package_holds_the_topic_modules_and_nothing_else() -> None:
    found = {info.name for info in pkgutil.iter_modules(toolkit.__path__)}
    assert found == set(TOPICS)


def test_every_public_name_of_a_topic_module_is_exported_once_by_the_package() -> None:
    by_topic = {topic: defined_names(topic) for topic in TOPICS}
    exported = [name for names in by_topic.values() for name in names]
    assert len(exported) == len(set(exported)), "a name defined in two topic modules"
    assert sorted(exported) == sorted(toolkit.__all__)
    for topic, names in by_topic.items():
        module = import_module(f"kc_core.adapters.{topic}")
        for name in names:
            assert getattr(toolkit, name) is getattr(module, name), (topic, name)


def test_the_package_docstring_names_every_module_and_every_export() -> None:
    doc = toolkit.__doc__ or ""
    for topic in TOPICS:
        assert f":mod:`.{topic}`" in doc, topic
    missing = [name for name in toolkit.__all__ if f"`{name}`" not in doc]
    assert not missing


PROBE = """
import json, sys
import kc_core.adapters
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_toolkit_loads_no_framework_and_only_the_engine_values() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    frameworks = {"bottle", "django", "fastapi", "flask", "pyramid", "starlette", "webob"}
    assert {name.partition(".")[0] for name in loaded}.isdisjoint(frameworks)
    engine_parts = {name for name in loaded if name.startswith("kc_core.engine.")}
    assert engine_parts == {"kc_core.engine.settings", "kc_core.engine.values"}
