"""The plugin manager: entry points, owning-adapter dispatch, check(), the typed facade."""

from __future__ import annotations

from typing import Any

import pytest
from toy_adapter import ToyAdapter, ToyRequest, ToyResponse

from kc_core.plugins import AdapterNotFound, PluginError, Plugins, hookimpl


class OtherRequest:
    """A request of another framework."""


class SpecialRequest(ToyRequest):
    """A subclass a more specific adapter claims."""


def test_entry_points_load_the_installed_example_adapter() -> None:
    pytest.importorskip("kc_bottle", reason="pip install ./examples/bottle_adapter")
    assert "bottle" in Plugins().adapter_names()


def test_an_empty_manager_has_no_adapter() -> None:
    plugins = Plugins(load_entry_points=False)
    assert plugins.adapter_names() == []
    with pytest.raises(AdapterNotFound, match=r"no kc adapter handles .*ToyRequest"):
        plugins.adapter_for(ToyRequest())


def test_adapter_hooks_are_called_on_the_owning_adapter_only() -> None:
    plugins = Plugins(load_entry_points=False)
    toy, other = ToyAdapter(ToyRequest), ToyAdapter(OtherRequest)
    plugins.register(toy, name="toy")
    plugins.register(other, name="other")
    adapter = plugins.adapter_for(ToyRequest(url="http://app.test/a"))
    assert adapter.name == "toy"
    assert adapter.path(ToyRequest(url="http://app.test/a")) == "/a"
    assert (toy.calls, other.calls) == (["path"], [])
    assert plugins.adapter_for(OtherRequest()).name == "other"


def test_the_most_specific_request_type_wins() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(SpecialRequest), name="special")
    plugins.register(ToyAdapter(ToyRequest), name="general")  # registered last, still loses
    assert plugins.adapter_for(SpecialRequest()).name == "special"
    assert plugins.adapter_for(ToyRequest()).name == "general"


def test_of_two_adapters_for_one_type_the_last_registered_wins() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="installed")
    plugins.register(ToyAdapter(), name="override")
    assert plugins.adapter_for(ToyRequest()).name == "override"


def test_adapter_is_resolved_once_per_request_type() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    assert plugins.adapter_for(ToyRequest()) is plugins.adapter_for(ToyRequest())


def test_check_fails_loudly_on_a_misspelt_hook() -> None:
    class Typo(ToyAdapter):
        @hookimpl
        def kc_reqeust_path(self, request: ToyRequest) -> str:
            return "/"

    plugins = Plugins(load_entry_points=False)
    plugins.register(Typo(), name="typo")
    with pytest.raises(PluginError, match="kc_reqeust_path"):
        plugins.check()


def test_unmarked_kc_functions_are_hooks_too_so_their_typos_fail_as_well() -> None:
    class Unmarked:
        def kc_after_lgoin(self, request: Any, tokens: Any, identity: Any) -> None:
            pass

    plugins = Plugins(load_entry_points=False)
    plugins.register(Unmarked(), name="unmarked")
    with pytest.raises(PluginError, match="kc_after_lgoin"):
        plugins.check()


def test_check_refuses_adapter_hooks_without_request_types() -> None:
    class Headless:
        @hookimpl
        def kc_request_path(self, request: Any) -> str:
            return "/"

    plugins = Plugins(load_entry_points=False)
    plugins.register(Headless(), name="headless")
    with pytest.raises(PluginError, match="headless implements kc_request_path but not"):
        plugins.check()


def test_an_adapter_missing_a_required_hook_is_named() -> None:
    class Partial(ToyAdapter):
        kc_response = None  # type: ignore[assignment]

    plugins = Plugins(load_entry_points=False)
    plugins.register(Partial(), name="partial")
    with pytest.raises(PluginError, match="adapter partial does not implement kc_response"):
        plugins.adapter_for(ToyRequest())


def test_optional_adapter_hooks_have_defaults() -> None:
    class Minimal(ToyAdapter):
        kc_session_rotate = None  # type: ignore[assignment]

    plugins = Plugins(load_entry_points=False)
    plugins.register(Minimal(), name="minimal")
    adapter = plugins.adapter_for(ToyRequest(url="https://app.test/"))
    assert adapter.client_address(ToyRequest()) is None
    assert adapter.is_secure(ToyRequest(url="https://app.test/")) is True
    assert adapter.is_secure(ToyRequest(url="http://app.test/")) is False
    assert adapter.rotate_session(ToyRequest()) is None


def test_an_implementation_may_take_fewer_arguments_than_its_spec() -> None:
    class Terse(ToyAdapter):
        @hookimpl
        def kc_redirect(self, location: str) -> ToyResponse:  # type: ignore[override]
            return ToyResponse(303, headers=(("Location", location),))

    plugins = Plugins(load_entry_points=False)
    plugins.register(Terse(), name="terse")
    response = plugins.adapter_for(ToyRequest()).redirect(ToyRequest(), "/next", [])
    assert response == ToyResponse(303, headers=(("Location", "/next"),))


def test_registering_a_plugin_drops_the_resolved_adapters() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="first")
    assert plugins.adapter_for(ToyRequest()).name == "first"
    plugins.register(ToyAdapter(), name="second")
    assert plugins.adapter_for(ToyRequest()).name == "second"
    plugins.unregister(plugins.manager.get_plugin("second"))
    assert plugins.adapter_for(ToyRequest()).name == "first"


# -- loading: self-registration, lazy adapter entry points, disabling ----------------------------


def test_ensure_registered_registers_once_and_returns_the_manager() -> None:
    plugins = Plugins(load_entry_points=False)
    toy = ToyAdapter()
    assert plugins.ensure_registered(toy, name="toy") is plugins
    plugins.ensure_registered(toy, name="toy")
    assert plugins.adapter_names() == ["toy"]


def test_ensure_registered_leaves_a_taken_name_to_its_plugin() -> None:
    plugins = Plugins(load_entry_points=False)
    first, second = ToyAdapter(), ToyAdapter()
    plugins.register(first, name="toy")
    plugins.ensure_registered(second, name="toy")
    assert plugins.manager.get_plugin("toy") is first
    assert plugins.manager.is_registered(second)


def test_adapter_entry_points_load_only_for_their_frameworks_requests() -> None:
    bottle = pytest.importorskip("bottle", reason="pip install ./examples/bottle_adapter")
    plugins = Plugins()
    plugins.register(ToyAdapter(), name="toy")
    plugins.check()
    assert plugins.adapter_for(ToyRequest()).name == "toy"
    assert plugins.manager.get_plugin("bottle") is None, "no Bottle request was seen yet"
    assert "bottle" in plugins.adapter_names()  # installed, listed without importing it
    assert plugins.adapter_for(bottle.BaseRequest({})).name == "bottle"
    assert plugins.manager.get_plugin("flask") is None


def test_disable_leaves_an_installed_adapter_unloaded() -> None:
    bottle = pytest.importorskip("bottle", reason="pip install ./examples/bottle_adapter")
    plugins = Plugins(disable=["bottle"])
    assert "bottle" not in plugins.adapter_names()
    with pytest.raises(AdapterNotFound, match="no kc adapter handles bottle"):
        plugins.adapter_for(bottle.BaseRequest({}))


def test_the_environment_variable_disables_plugins_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KC_DISABLE_PLUGINS", " bottle , flask,")
    plugins = Plugins(disable=["audit"])
    assert plugins.disabled == {"bottle", "flask", "audit"}
    assert not {"bottle", "flask"} & set(plugins.adapter_names())


def test_check_names_every_missing_required_hook_and_no_optional_one() -> None:
    class Sketch:
        @hookimpl
        def kc_request_types(self) -> tuple[type, ...]:
            return (ToyRequest,)

        @hookimpl
        def kc_request_path(self, request: ToyRequest) -> str:
            return "/"

    plugins = Plugins(load_entry_points=False)
    plugins.register(Sketch(), name="sketch")
    with pytest.raises(PluginError) as caught:
        plugins.check()
    message = str(caught.value)
    missing = message.split("does not implement ", 1)[1].split(", ")
    assert missing == [
        "kc_request_method",
        "kc_request_url",
        "kc_request_query",
        "kc_request_header",
        "kc_request_cookies",
        "kc_request_form",
        "kc_session",
        "kc_redirect",
        "kc_response",
    ]


def test_an_engine_refuses_an_incomplete_adapter_when_it_is_built() -> None:
    from kc_core import Config
    from kc_core.engine import Engine

    class Partial(ToyAdapter):
        kc_request_form = None  # type: ignore[assignment]

    plugins = Plugins(load_entry_points=False)
    plugins.register(Partial(), name="partial")
    config = Config(server_url="http://127.0.0.1:9", realm="r", client_id="c")
    with pytest.raises(PluginError, match=r"adapter partial does not implement kc_request_form$"):
        Engine(config, plugins=plugins)


def test_an_empty_header_counts_as_a_missing_one() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    adapter = plugins.adapter_for(ToyRequest())
    request = ToyRequest(headers={"Authorization": "", "Accept": "text/html"})
    assert adapter.header(request, "authorization") is None
    assert adapter.header(request, "x-missing") is None
    assert adapter.header(request, "accept") == "text/html"
