"""Counters and operator warnings in real flows against the real Keycloak (kc_core.metrics,
kc_core.alerts): a login, a silent refresh, bearer calls, Keycloak going away."""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Iterator, Mapping

import pytest
import requests

from kc_core import Client, Config, alerts, metrics
from kc_core.engine import Engine, EngineSettings
from kc_core.engine.settings import REFRESH_LINGER
from kc_core.errors import KeycloakUnreachable, UnknownKey, WrongAudience
from kc_core.plugins import Plugins
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import serve_wsgi
from kc_core.testing.server import KeycloakRealm

kc_bottle = pytest.importorskip("kc_bottle", reason="pip install ./examples/bottle_adapter")
from kc_bottle.demo import make_app  # noqa: E402

pytestmark = pytest.mark.integration


class Recorder:
    """An observer keeping every report."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, float, dict[str, str]]] = []

    def __call__(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self.reports.append((name, value, dict(labels)))

    def count(self, name: str, **labels: str) -> int:
        return sum(
            1
            for n, _, got in self.reports
            if n == name and all(got.get(k) == v for k, v in labels.items())
        )

    def values(self, name: str, **labels: str) -> list[float]:
        return [
            value
            for n, value, got in self.reports
            if n == name and all(got.get(k) == v for k, v in labels.items())
        ]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    metrics.add_observer(recorder)
    yield recorder
    metrics.remove_observer(recorder)


@pytest.fixture
def short_alert_interval() -> Iterator[float]:
    before = alerts.interval()
    alerts.set_interval(1.0)
    yield 1.0
    alerts.set_interval(before)


def _config(keycloak: KeycloakRealm, **changes: object) -> Config:
    values: dict[str, object] = {
        "server_url": keycloak.base_url,
        "realm": keycloak.realm,
        "client_id": "kc-web",
        "client_secret": keycloak.client("kc-web").secret,
    }
    values.update(changes)
    return Config(**values)  # type: ignore[arg-type]


def test_counters_follow_a_login_silent_refreshes_and_bearer_calls(
    keycloak: KeycloakRealm, recorder: Recorder
) -> None:
    # A margin longer than the realm's 300 s token lifespan: every page refreshes.
    engine = Engine(
        _config(keycloak),
        plugins=Plugins(),
        store=MemoryTokenStore(),
        settings=EngineSettings(refresh_margin=400),
    )
    with serve_wsgi(make_app(engine)) as url, BrowserSession() as browser:
        login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
        # The landing page after the callback refreshed already (the margin says so).
        landed = recorder.count("kc_refreshes_total", result="refreshed")
        assert landed >= 1
        time.sleep(REFRESH_LINGER + 0.5)  # past the single flight's shared answer
        assert browser.get(f"{url}/private", allow_redirects=False).status_code == 200
        assert recorder.count("kc_refreshes_total", result="refreshed") == landed + 1
        assert recorder.count("kc_refreshes_total", result="refused") == 0

        with Client(_config(keycloak)) as web:
            token = web.password_grant("bob", "bob-password").access_token
        with Client(
            _config(keycloak, client_id="kc-service", client_secret="kc-service-secret")
        ) as service:
            foreign = service.client_credentials().access_token
        before = recorder.count("kc_token_validations_total", kind="access", result="accepted")
        answer = requests.get(
            f"{url}/api/profile", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200
        assert (
            recorder.count("kc_token_validations_total", kind="access", result="accepted") > before
        )
        refused = requests.get(
            f"{url}/api/profile", headers={"Authorization": f"Bearer {foreign}"}, timeout=10
        )
        assert refused.status_code == 401
        assert (
            recorder.count("kc_token_refusals_total", kind="access", reason="wrong_audience") == 1
        )

    token_calls = recorder.values("kc_keycloak_request_seconds", endpoint="token", status="200")
    assert len(token_calls) >= 5  # the code exchange, two refreshes, two grants
    assert all(0 < seconds < 30 for seconds in token_calls)
    assert recorder.count("kc_keycloak_request_seconds", endpoint="openid-configuration") >= 1
    assert recorder.count("kc_jwks_fetches_total", result="ok") >= 1


def test_a_flood_of_wrong_audience_tokens_warns_once_per_interval(
    keycloak: KeycloakRealm,
    recorder: Recorder,
    short_alert_interval: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Client(
        _config(keycloak, client_id="kc-service", client_secret="kc-service-secret")
    ) as service:
        foreign = service.client_credentials().access_token
    api = Client(_config(keycloak))  # kc-web: kc-service tokens do not name it
    caplog.set_level(logging.WARNING, logger="kc_core")
    started = time.monotonic()
    for _ in range(200):
        with pytest.raises(WrongAudience):
            api.validate_access_token(foreign)
    assert time.monotonic() - started < short_alert_interval, "the flood outlasted the interval"
    warnings = [r for r in caplog.records if r.name == "kc_core.tokens"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "kc-service" in warnings[0].getMessage()  # the caller to fix
    assert foreign not in warnings[0].getMessage()
    assert recorder.count("kc_token_refusals_total", reason="wrong_audience") == 200

    time.sleep(short_alert_interval + 0.1)
    with pytest.raises(WrongAudience):
        api.validate_access_token(foreign)
    warnings = [r for r in caplog.records if r.name == "kc_core.tokens"]
    assert len(warnings) == 2
    assert "199 more since the last warning" in warnings[1].getMessage()
    api.close()


def test_keycloak_unreachable_warns_once_and_times_every_attempt(
    keycloak: KeycloakRealm,
    recorder: Recorder,
    short_alert_interval: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = Client(
        _config(keycloak, server_url=f"http://127.0.0.1:{port}", retries=0, connect_timeout=1.0)
    )
    caplog.set_level(logging.WARNING, logger="kc_core")
    for _ in range(20):
        with pytest.raises(KeycloakUnreachable):
            down.client_credentials()
    warnings = [r for r in caplog.records if r.name == "kc_core.http"]
    assert len(warnings) == 1
    assert f"127.0.0.1:{port}" in warnings[0].getMessage()
    assert recorder.count("kc_keycloak_request_seconds", status="unreachable") == 20
    down.close()


def test_tokens_naming_unknown_keys_warn_of_a_refetch_storm_once(
    keycloak: KeycloakRealm,
    recorder: Recorder,
    short_alert_interval: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import base64
    import json

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    # Keycloak cannot sign with a key it does not publish: this token is forged locally.
    forged = f"{part({'alg': 'RS256', 'kid': 'not-published'})}.{part({'sub': 'x'})}.c2ln"
    client = Client(_config(keycloak))
    caplog.set_level(logging.WARNING, logger="kc_core")
    for _ in range(50):
        with pytest.raises(UnknownKey):
            client.validate_access_token(forged)
    storms = [r for r in caplog.records if r.name == "kc_core.jwks"]
    assert len(storms) == 1
    assert "not-published" in storms[0].getMessage()
    assert recorder.count("kc_jwks_fetches_total", result="ok") == 1  # refetches held back
    assert recorder.count("kc_token_refusals_total", reason="unknown_key") == 50
    client.close()


def test_reports_stop_when_the_observer_is_removed(keycloak: KeycloakRealm) -> None:
    seen = Counter[str]()

    def observer(name: str, value: float, labels: Mapping[str, str]) -> None:
        seen[name] += 1

    metrics.add_observer(observer)
    metrics.add_observer(observer)  # twice: still one
    with Client(_config(keycloak)) as client:
        client.warm_up()
        first = sum(seen.values())
        metrics.remove_observer(observer)
        client.keys.refresh()
    assert first >= 2
    assert sum(seen.values()) == first
