"""The code blocks of docs/django.md that tests run: each follows ``<!-- tested: NAME -->``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).parents[3] / "docs" / "django.md"
_TESTED = re.compile(r"<!-- tested: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def docs_blocks() -> dict[str, str]:
    """The docs' tested blocks, by name."""
    return dict(_TESTED.findall(DOCS.read_text(encoding="utf-8")))


def run_block(name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute the block ``name`` (in ``namespace``, default a new one); return the namespace."""
    found = namespace if namespace is not None else {"__name__": f"docs_{name}"}
    exec(compile(docs_blocks()[name], f"{DOCS}:{name}", "exec"), found)
    return found
