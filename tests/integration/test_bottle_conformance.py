"""The adapter conformance kit run against the example Bottle adapter (examples/bottle_adapter)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from kc_core.engine import Engine
from kc_core.testing.conformance import AdapterConformance, serve_wsgi

kc_bottle_demo = pytest.importorskip(
    "kc_bottle.demo", reason="pip install ./examples/bottle_adapter"
)


class TestBottleAdapter(AdapterConformance):
    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        return serve_wsgi(kc_bottle_demo.make_app(engine))
