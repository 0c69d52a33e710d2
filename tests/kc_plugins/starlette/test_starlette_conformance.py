"""kc's adapter conformance kit, run against a Starlette app served by uvicorn."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from starlette_support import build_app

from kc_core.engine import Engine
from kc_core.testing.conformance import AdapterConformance, serve_asgi

pytestmark = pytest.mark.integration


class TestStarletteAdapter(AdapterConformance):
    def serve(self, engine: Engine) -> AbstractContextManager[str]:
        return serve_asgi(build_app(engine, https_only=True))
