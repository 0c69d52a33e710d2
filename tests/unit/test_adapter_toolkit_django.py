"""The toolkit's helpers first written for kc-django: BuiltOnce, RequestGuard, environ_hooks,
set_changed, configured_engine, single_client_config, request_call, request_attribute's convert."""

from __future__ import annotations

import threading

import pytest
from toy_adapter import ToyAdapter, ToyRequest

from kc_core import Config, ConfigError
from kc_core.adapters import (
    BuiltOnce,
    RequestGuard,
    configured_engine,
    environ_hooks,
    request_attribute,
    request_call,
    set_changed,
    single_client_config,
)
from kc_core.engine import Engine, Requirement
from kc_core.plugins import Plugins

OFFLINE = Config(server_url="http://127.0.0.1:9", realm="shop", client_id="kc-web")


def test_built_once_builds_once_across_threads_and_again_after_reset() -> None:
    builds: list[object] = []
    started = threading.Barrier(8)

    def build() -> object:
        builds.append(object())
        return builds[-1]

    once = BuiltOnce(build)
    seen: list[object] = []

    def get() -> None:
        started.wait()
        seen.append(once.get())

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert seen == builds * 8
    once.reset()
    assert once.get() is builds[1]
    assert len(builds) == 2


def test_built_once_keeps_nothing_when_the_build_fails() -> None:
    attempts: list[int] = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("settings missing")
        return "engine"

    once = BuiltOnce(build)
    with pytest.raises(ValueError, match="settings missing"):
        once.get()
    assert once.get() == "engine"
    assert len(attempts) == 2


def test_environ_hooks_read_headers_names_and_address_from_the_environ() -> None:
    header, names, address = environ_hooks(lambda request: request)
    environ = {
        "HTTP_AUTHORIZATION": "Bearer t",
        "HTTP_X_FORWARDED_FOR": "10.0.0.1",
        "CONTENT_TYPE": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
        "PATH_INFO": "/private",
    }
    assert header(environ, "authorization") == "Bearer t"
    assert header(environ, "Content-Type") == "application/json"
    assert header(environ, "X-Missing") is None
    assert sorted(names(environ)) == ["Authorization", "Content-Type", "X-Forwarded-For"]
    assert address(environ) == "127.0.0.1"
    assert address({}) is None


@pytest.fixture(scope="module")
def engine() -> Engine:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    return Engine(OFFLINE, plugins=plugins)


def test_request_guard_asks_the_engine_once_and_refuses_a_visitor(engine: Engine) -> None:
    request_guard = RequestGuard(engine, ToyRequest(headers={"Accept": "application/json"}))
    assert request_guard.guard is None
    visitor = request_guard.authenticate()
    assert request_guard.authenticate() is visitor
    assert visitor.identity is None
    assert request_guard.user() is None
    assert request_guard.requirement_failure(Requirement.for_roles(["realm:admin"])) is None
    refused = request_guard.admit(Requirement.for_bearer())
    assert refused.response is not None
    assert refused.response.status == 401
    assert request_guard.guard is visitor  # a refusal does not replace the request's guard
    assert request_guard.identity() is None
    assert request_guard.token() is None


def test_set_changed_sets_only_differing_attributes_the_target_has() -> None:
    class Account:
        email = "old@example.com"
        first_name = "Ann"

    account = Account()
    values = {"email": "new@example.com", "first_name": "Ann", "nickname": "a"}
    assert set_changed(account, values) == ["email"]
    assert account.email == "new@example.com"
    assert not hasattr(account, "nickname")
    assert set_changed(account, values) == []


def test_configured_engine_takes_an_engine_a_dotted_factory_or_nothing(engine: Engine) -> None:
    factories = {"project.make_engine": lambda: engine}
    load = factories.__getitem__
    assert configured_engine({}, "KC_ENGINE", key="ENGINE", load=load) is None
    assert configured_engine({"KC_ENGINE": engine}, "KC_ENGINE", key="ENGINE", load=load) is engine
    given = {"KC_ENGINE": "project.make_engine"}
    assert configured_engine(given, "KC_ENGINE", key="ENGINE", load=load) is engine
    with pytest.raises(ConfigError, match="KC_ENGINE must be an Engine, got <class 'int'>") as e:
        configured_engine({"KC_ENGINE": 3}, "KC_ENGINE", key="ENGINE", load=load)
    assert e.value.key == "ENGINE"


def test_single_client_config_is_none_for_several_tenants(engine: Engine) -> None:
    assert single_client_config(engine) is OFFLINE
    tenants = Engine({"a": OFFLINE, "b": OFFLINE}, plugins=Plugins(load_entry_points=False))
    assert single_client_config(tenants) is None


def test_request_call_answers_with_the_request_method_s_result() -> None:
    class Request:
        def is_secure(self) -> bool:
            return True

    hook = request_call("is_secure")
    assert hook(Request()) is True
    assert hook.__name__ == "request_is_secure"


def test_request_attribute_converts_the_attribute_when_asked() -> None:
    class Request:
        def __init__(self) -> None:
            self.GET = {"state": ["first", "second"]}

    request = Request()
    first = request_attribute("GET", lambda lists: {k: v[0] for k, v in lists.items()})
    assert first(request) == {"state": "first"}
    assert request_attribute("GET")(request) is request.GET
